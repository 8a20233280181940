from __future__ import annotations

import subprocess

import pytest

from podman_sd import names


@pytest.mark.parametrize("name", ["web", "my-web", "a.b", ".x", "x_y:z", "über", "a/b", "-"])
def test_escape_matches_systemd_escape(name: str) -> None:
    expected = subprocess.run(
        ["systemd-escape", "--", name], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert names.systemd_escape(name) == expected


def test_a_dash_never_nests_one_pod_in_another() -> None:
    assert names.pod_slice("my-web") == "pod-my\\x2dweb.slice"
    assert names.pod_slice("my") == "pod-my.slice"
    # Pod "a-b" app "c" and pod "a" app "b-c" must not share a scope name.
    assert names.app_scope("a-b", "c") != names.app_scope("a", "b-c")


def test_service_keeps_the_pod_name() -> None:
    assert names.pod_service("my-web") == "pod@my-web.service"
