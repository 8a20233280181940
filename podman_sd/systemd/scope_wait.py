"""Waiting until systemd has moved a process into its new scope.

StartTransientUnit returns when the job is queued; the move into the
scope's cgroup happens when the job runs, a few milliseconds later. The app
must not exec before that, or its first children could start outside.
"""

from __future__ import annotations

import time

from podman_sd.errors import SystemdError


def wait_for_cgroup(pid: int, unit: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    path = f"/proc/{pid}/cgroup"
    while True:
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            raise SystemdError(f"process {pid} exited before it reached {unit}") from None
        if f"/{unit}\n" in text:
            return
        if time.monotonic() > deadline:
            raise SystemdError(f"process {pid} was not moved into {unit} within {timeout} s")
        # The move takes a few milliseconds; polling /proc is cheap, and
        # every millisecond here is one more before the pod is ready.
        time.sleep(0.0005)
