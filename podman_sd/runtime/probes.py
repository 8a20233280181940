"""Kubernetes probes (startup, liveness, readiness), run by the resident supervisor.

Each probe runs in a forked child, so a hung endpoint never blocks the
supervisor: tcpSocket and httpGet children join the pod's network namespace
and connect; exec probes run ``podman-sd exec``, so the command gets exactly
the app's namespaces, scope, user and capabilities. The supervisor reaps the
child and counts successes and failures against the thresholds:

- a startup probe holds the other two back until it succeeds, and fails the
  pod when it reaches its failure threshold;
- a liveness probe that reaches its failure threshold fails the pod (which
  systemd then restarts, per restartPolicy: the pod is the unit of restart);
- readiness decides when the pod is ready: with readiness probes, READY=1
  is sent once every app is ready, so ``systemctl start`` returns then, and
  units ordered after the pod start only when it serves.

This module is loaded in the resident process: standard modules only, and
the network code is imported in the probe child, after the fork.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing costs memory in the resident process
if TYPE_CHECKING:
    from typing import Any

STARTUP, LIVENESS, READINESS = "startup", "liveness", "readiness"


def _tcp(host: str, port: int, timeout: float) -> bool:
    import socket

    with socket.create_connection((host, port), timeout=timeout):
        return True


def _http(spec: dict[str, Any], timeout: float) -> bool:
    import http.client

    host, port = spec["host"], spec["port"]
    if spec["scheme"] == "HTTPS":
        import ssl

        # Like the kubelet: an HTTPS probe does not verify the certificate.
        context = ssl._create_unverified_context()
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"User-Agent": "podman-sd-probe", **dict(spec["headers"])}
    connection.request("GET", spec["path"], headers=headers)
    status = connection.getresponse().status
    return 200 <= status < 400


def run_in_app(exec_argv: list[str], command: list[str]) -> int:
    """Fork ``podman-sd exec POD APP -- COMMAND`` (for exec probes and
    lifecycle hooks); returns its pid for the supervisor to reap."""
    pid = os.fork()
    if pid == 0:
        try:
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 65536)  # not the apps' log pipes, nor the journal
            os.execv(exec_argv[0], [*exec_argv, "--", *command])
        finally:
            os._exit(127)
    return pid


def _child(spec: dict[str, Any], app_pid: int) -> None:
    """In the forked tcpSocket or httpGet probe: exits 0 on success, 1 on failure."""
    ok = False
    try:
        from podman_sd import syscalls as sc

        # Into the pod's network namespace, where "localhost" is the pod.
        ns = os.open(f"/proc/{app_pid}/ns/net", os.O_RDONLY)
        sc.setns(ns, 0)
        if spec["kind"] == "tcp":
            ok = _tcp(spec["host"], spec["port"], spec["timeout"])
        else:
            ok = _http(spec, spec["timeout"])
    except BaseException:
        ok = False
    os._exit(0 if ok else 1)


class Probe:
    """One probe of one app: its schedule, its counts, its running child."""

    __slots__ = (
        "app",
        "deadline",
        "due",
        "failures",
        "kind",
        "passed",
        "pid",
        "spec",
        "successes",
    )  # fmt: skip

    def __init__(self, app: str, kind: str, spec: dict[str, Any], started: float) -> None:
        self.app = app
        self.kind = kind
        self.spec = spec
        self.due = started + spec["initial_delay"]
        self.successes = 0
        self.failures = 0
        self.passed = False  # the last verdict (thresholds applied)
        self.pid = 0
        self.deadline = 0.0

    def start(self, app_pid: int, exec_argv: list[str]) -> int:
        if self.spec["kind"] == "exec":
            pid = run_in_app(exec_argv, self.spec["command"])
        else:
            pid = os.fork()
            if pid == 0:
                _child(self.spec, app_pid)
        self.pid = pid
        # An exec probe starts a whole podman-sd exec: give it a little more.
        slack = 2.0 if self.spec["kind"] == "exec" else 0.5
        self.deadline = time.monotonic() + self.spec["timeout"] + slack
        return pid

    def finished(self, ok: bool, now: float) -> str | None:
        """Count a result; returns "failed" or "passed" when the verdict changes."""
        self.pid = 0
        self.due = now + self.spec["period"]
        if ok:
            self.successes += 1
            self.failures = 0
            if not self.passed and self.successes >= self.spec["success"]:
                self.passed = True
                return "passed"
        else:
            self.failures += 1
            self.successes = 0
            if self.failures >= self.spec["failure"] and (
                self.passed or self.failures == self.spec["failure"]
            ):
                self.passed = False
                return "failed"
        return None
