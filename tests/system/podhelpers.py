"""Helpers shared by the system tests that run pods in a test host."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tests.testhost import TestHost

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll PREDICATE until it returns something true; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def journal(host: TestHost, unit: str, *matches: str) -> list[dict[str, Any]]:
    out = host.run("journalctl", "-u", unit, "-o", "json", "--no-pager", *matches).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def journal_now(host: TestHost) -> str:
    """Now, for journalctl --since: to the microsecond, so that what a test
    that ended in this same second logged is not counted."""
    return host.run("date", "+%Y-%m-%d %H:%M:%S.%6N").stdout.strip()


def messages(host: TestHost, unit: str, *matches: str) -> list[str]:
    return [str(e.get("MESSAGE")) for e in journal(host, unit, *matches)]


def status(host: TestHost, pod: str) -> dict[str, Any]:
    result = host.run("podman-sd", "status", "--json", pod, check=False)
    return dict(json.loads(result.stdout)) if result.stdout.strip() else {}


def app_pid(host: TestHost, pod: str, app: str) -> int:
    apps = {a["name"]: a for a in status(host, pod).get("apps", [])}
    return int(apps[app]["pid"])


def unit_property(host: TestHost, unit: str, prop: str) -> str:
    return host.run("systemctl", "show", "-P", prop, unit).stdout.strip()


IMAGE = "oci:/srv/images/busybox:latest"  # what the conftest's host fixture provides


def one_app_pod(
    name: str,
    script: str,
    policy: str = "Always",
    grace: int = 2,
    extra: str = "",
    container: str = "",
) -> str:
    """A pod of one app, "app", running SCRIPT in sh, restarted at once when
    POLICY says so. EXTRA goes into the spec, CONTAINER into the app's fields."""
    return f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  annotations: {{podman-sd.io/restart-sec: "0"}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: {grace}
{extra}  containers:
  - name: app
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, {script!r}]
{container}"""


def write_pod(host: TestHost, name: str, manifest: str) -> None:
    host.write_file(f"/etc/podman-sd/pods/{name}.yaml", manifest)
    host.run("systemctl", "daemon-reload")


def overlay_mounts(host: TestHost) -> list[str]:
    """Overlay mounts in the test host other than its own root."""
    lines = host.run("cat", "/proc/1/mountinfo").stdout.splitlines()
    return [line for line in lines if " - overlay " in line and line.split()[4] != "/"]


def pod_cgroups(host: TestHost) -> list[str]:
    out = host.run("find", "/sys/fs/cgroup/pod.slice", "-mindepth", "1", "-type", "d", check=False)
    return sorted(out.stdout.split())


def gated_init_pod(name: str, image: str = IMAGE) -> str:
    """A pod whose init container waits until /srv/gate-NAME/open exists
    (touch it to let the start go on); then one app sleeps."""
    return f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 0
  volumes:
  - name: gate
    hostPath: {{path: /srv/gate-{name}, type: DirectoryOrCreate}}
  initContainers:
  - name: wait
    image: {image}
    command: [sh, -c, "until test -e /gate/open; do sleep 0.1; done"]
    volumeMounts: [{{name: gate, mountPath: /gate}}]
  containers:
  - name: app
    image: {image}
    command: [sleep, "1000"]
"""
