"""``podman-sd logs``: the journalctl command that shows a pod's output.

journald keeps the output, not us; this only says what to ask for, in the
terms `podman logs` and `kubectl logs` users type: ``--since 10m``, an
RFC 3339 time, ``-t`` for timestamps; and ``-f`` ends when the pod has
ended, as `podman logs -f` does with its container (``journalctl -f`` never
ends by itself).
"""

from __future__ import annotations

import re
from datetime import datetime

from podman_sd.errors import CommandError

# A Go duration as `podman logs --since` takes it: 10m, 1h30m, 2.5s, 300ms.
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
# An RFC 3339 time (2026-01-02T15:04:05Z), which systemd 252 cannot read.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def journal_time(value: str, option: str) -> str:
    """VALUE (a duration back from now, an RFC 3339 time, or anything
    journalctl(1) takes) as journalctl takes it."""
    if _DURATION.match(value):
        # systemd.time(7) reads these units as Go does ("m" is minutes).
        return f"-{value.replace('µs', 'us')}"
    if not _RFC3339.match(value):
        return value  # "yesterday", "2026-01-02 15:04", ...: journalctl decides
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option} {value!r}: not a time (e.g. 10m, 2026-01-02T15:04:05Z)"
        ) from None
    # Without a zone it is local time, as journalctl reads its own formats.
    return f"@{moment.timestamp():.6f}"


def journalctl_argv(
    pod: str,
    app: str | None,
    *,
    follow: bool = False,
    tail: int | None = None,
    since: str | None = None,
    until: str | None = None,
    timestamps: bool = False,
) -> list[str]:
    # --all: output that is not text comes back as the app wrote it (as with
    # `podman logs`), not as "[9B blob data]"; --quiet: nothing but the lines
    # (no "-- No entries --", no "-- Boot ... --" between them).
    argv = ["journalctl", f"--unit=pod@{pod}.service", "--no-pager", "--all", "--quiet"]
    if app:
        # Bare lines, as the app wrote them; with the time in front if asked.
        output = "short-iso-precise" if timestamps else "cat"
        argv += [f"--output={output}", f"CONTAINER_NAME={app}"]
    else:
        output = "short-iso-precise" if timestamps else "short"
        argv += [f"--output={output}", f"PODMAN_SD_POD={pod}"]
    if since is not None:
        argv.append(f"--since={journal_time(since, '--since')}")
    if until is not None:
        argv.append(f"--until={journal_time(until, '--until')}")
    argv += ["--follow"] if follow else []
    argv += [f"--lines={tail}"] if tail is not None else ["--no-tail"]
    return argv


# The unit states in which a pod has ended (auto-restart is not one of them).
ENDED = ("inactive", "failed")


def unit_state(unit: str) -> str:
    import subprocess

    shown = subprocess.run(
        ["systemctl", "show", "--property=ActiveState", "--value", unit],
        capture_output=True,
        text=True,
    )
    return shown.stdout.strip()


def follow_until_ended(argv: list[str], unit: str, interval: float = 1.0) -> int:
    """Run ARGV (journalctl --follow) until UNIT has ended, then a moment
    longer for its last lines; its exit status, or 0 when the pod ended."""
    import subprocess
    import time

    child = subprocess.Popen(argv)
    try:
        while True:
            try:
                return child.wait(timeout=interval)
            except subprocess.TimeoutExpired:
                pass
            if unit_state(unit) in ENDED:
                time.sleep(interval / 2)  # journalctl shows what came last
                child.terminate()
                child.wait()
                return 0
    except KeyboardInterrupt:  # ^C reached journalctl too
        child.terminate()
        child.wait()
        return 130
