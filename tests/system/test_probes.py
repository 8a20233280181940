"""Probes in a booted systemd: readiness decides when `systemctl start`
returns, a failing liveness probe restarts the pod."""

from __future__ import annotations

import time

import pytest

from tests.system.podhelpers import messages, one_app_pod, unit_property, wait_for, write_pod
from tests.testhost import TestHost

pytestmark = pytest.mark.system

# Every app here serves port 8080 by the name "web", and gets no grace period.
PORTS = "    ports: [{name: web, containerPort: 8080}]\n"


def probed_pod(name: str, script: str, probes: str, policy: str = "Always", grace: int = 0) -> str:
    return one_app_pod(name, script, policy, grace, container=PORTS + probes)


def test_exec_readiness_probe_holds_the_start_until_the_app_is_ready(host: TestHost) -> None:
    probes = (
        "    readinessProbe:\n      exec: {command: [cat, /tmp/ready]}\n      periodSeconds: 1\n"
    )
    script = "sleep 2; touch /tmp/ready; exec sleep 1000"
    write_pod(host, "slowready", probed_pod("slowready", script, probes))
    started = time.monotonic()
    host.run("systemctl", "start", "pod@slowready")
    assert time.monotonic() - started >= 2.0
    assert (
        unit_property(host, "pod@slowready.service", "StatusText") == "1/1 apps running, 1/1 ready"
    )
    assert "readiness probe of app app passed" in messages(host, "pod@slowready")
    host.run("systemctl", "stop", "pod@slowready")


def test_http_readiness_probe_on_a_named_port(host: TestHost) -> None:
    probes = (
        "    readinessProbe:\n"
        "      httpGet: {path: /index.html, port: web}\n"
        "      periodSeconds: 1\n"
    )
    script = "mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www"
    write_pod(host, "web", probed_pod("web", script, probes))
    host.run("systemctl", "start", "pod@web")
    assert unit_property(host, "pod@web.service", "StatusText") == "1/1 apps running, 1/1 ready"
    host.run("systemctl", "stop", "pod@web")


def test_failing_liveness_probe_restarts_the_pod(host: TestHost) -> None:
    probes = (
        "    livenessProbe:\n"
        "      tcpSocket: {port: 9999}\n"
        "      periodSeconds: 1\n"
        "      failureThreshold: 2\n"
    )
    write_pod(host, "sick", probed_pod("sick", "exec sleep 1000", probes))
    host.run("systemctl", "start", "pod@sick")
    assert wait_for(
        lambda: unit_property(host, "pod@sick.service", "NRestarts") not in ("", "0"), timeout=20
    )
    lines = messages(host, "pod@sick")
    assert "liveness probe of app app failed 2 times" in lines
    assert any("the pod restarts" in m for m in lines)
    host.run("systemctl", "stop", "pod@sick")


def test_lifecycle_hooks(host: TestHost) -> None:
    hooks = (
        "    lifecycle:\n"
        "      postStart: {exec: {command: [sh, -c, 'sleep 1; echo started > /tmp/hook']}}\n"
        "      preStop: {exec: {command: [sh, -c, 'echo stopping > /proc/1/fd/1']}}\n"
    )
    # The app shows the postStart file once it appears, and traps SIGTERM to
    # show that preStop ran before it.
    script = (
        "trap 'echo got TERM; exit 0' TERM; "
        "while [ ! -e /tmp/hook ]; do sleep 0.1; done; cat /tmp/hook; "
        "while :; do sleep 0.1; done"
    )
    manifest = probed_pod("hooked", script, hooks, grace=10)
    write_pod(host, "hooked", manifest)
    started = time.monotonic()
    host.run("systemctl", "start", "pod@hooked")
    # READY=1 waited for postStart.
    assert time.monotonic() - started >= 1.0
    assert wait_for(lambda: "started" in messages(host, "pod@hooked", "CONTAINER_NAME=app"))
    host.run("systemctl", "stop", "pod@hooked")
    app_lines = messages(host, "pod@hooked", "CONTAINER_NAME=app")
    assert app_lines[-2:] == ["stopping", "got TERM"]


def test_failing_post_start_hook_kills_the_app(host: TestHost) -> None:
    hooks = "    lifecycle:\n      postStart: {exec: {command: [sh, -c, 'exit 4']}}\n"
    write_pod(host, "badhook", probed_pod("badhook", "exec sleep 1000", hooks, policy="Never"))
    host.run("systemctl", "start", "pod@badhook", check=False)
    assert wait_for(
        lambda: unit_property(host, "pod@badhook.service", "ActiveState") in ("failed", "inactive")
    )
    assert "postStart hook of app app failed with status 4; killing the app" in messages(
        host, "pod@badhook"
    )
