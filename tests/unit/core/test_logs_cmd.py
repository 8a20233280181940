"""How `podman-sd logs` asks journalctl, in the terms podman and kubectl users type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from podman_sd.errors import CommandError
from podman_sd.logs_cmd import journal_time, journalctl_argv


@pytest.mark.parametrize(
    ("given", "asked"),
    [
        ("10m", "-10m"),
        ("1h30m", "-1h30m"),
        ("2.5s", "-2.5s"),
        ("300ms", "-300ms"),
        ("5µs", "-5us"),
        ("yesterday", "yesterday"),
        ("2026-01-02 15:04", "2026-01-02 15:04"),
    ],
)
def test_durations_go_back_from_now_and_journalctl_formats_pass(given: str, asked: str) -> None:
    assert journal_time(given, "--since") == asked


def test_rfc3339_times_become_epoch_seconds() -> None:
    expected = datetime(2026, 1, 2, 15, 4, 5, tzinfo=UTC).timestamp()
    assert journal_time("2026-01-02T15:04:05Z", "--since") == f"@{expected:.6f}"
    assert journal_time("2026-01-02T16:04:05.5+01:00", "--until") == f"@{expected + 0.5:.6f}"


def test_a_broken_rfc3339_time_is_an_error_naming_the_option() -> None:
    with pytest.raises(CommandError, match=r"^--until '2026-01-02T25:00': not a time"):
        journal_time("2026-01-02T25:00", "--until")


def test_one_app_gives_bare_lines_every_app_names_them() -> None:
    one = journalctl_argv("web", "nginx", tail=5)
    assert "--output=cat" in one and "CONTAINER_NAME=nginx" in one and "--lines=5" in one
    every = journalctl_argv("web", None, follow=True, since="10m", timestamps=True)
    assert "--output=short-iso-precise" in every and "PODMAN_SD_POD=web" in every
    assert "--since=-10m" in every and "--follow" in every and "--no-tail" in every
