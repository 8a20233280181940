"""hostPID and shareProcessNamespace: which pid namespace the apps get."""

from __future__ import annotations

import pytest

from tests.system.podhelpers import app_pid, write_pod
from tests.testhost import TestHost

pytestmark = pytest.mark.system

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 0
{spec}  containers:
  - name: one
    image: oci:/srv/images/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sleep, "1000"]
  - name: two
    image: oci:/srv/images/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sleep, "2000"]
"""


def pid_ns(host: TestHost, pid: int) -> str:
    return host.run("readlink", f"/proc/{pid}/ns/pid").stdout.strip()


def test_by_default_each_app_has_its_own(host: TestHost) -> None:
    write_pod(host, "private", POD.format(name="private", spec=""))
    host.run("systemctl", "start", "pod@private")
    one, two = app_pid(host, "private", "one"), app_pid(host, "private", "two")
    assert len({pid_ns(host, one), pid_ns(host, two), pid_ns(host, 1)}) == 3
    host.run("systemctl", "stop", "pod@private")


def test_share_process_namespace(host: TestHost) -> None:
    write_pod(host, "shared", POD.format(name="shared", spec="  shareProcessNamespace: true\n"))
    host.run("systemctl", "start", "pod@shared")
    one, two = app_pid(host, "shared", "one"), app_pid(host, "shared", "two")
    assert pid_ns(host, one) == pid_ns(host, two) != pid_ns(host, 1)
    # One app sees the other's process, and PID 1 is the pod's pause process.
    seen = host.run("nsenter", f"--target={one}", "--all", "--", "ps", "-o", "pid,args").stdout
    assert "sleep 2000" in seen and "sleep 1000" in seen
    inside = host.run("nsenter", f"--target={one}", "--all", "--", "cat", "/proc/1/comm").stdout
    assert inside.strip() == "podman-sd-pause"
    host.run("systemctl", "stop", "pod@shared")
    assert host.run("pgrep", "-x", "podman-sd-pause", check=False).stdout.strip() == ""


def test_host_pid(host: TestHost) -> None:
    write_pod(host, "hostpid", POD.format(name="hostpid", spec="  hostPID: true\n"))
    host.run("systemctl", "start", "pod@hostpid")
    one = app_pid(host, "hostpid", "one")
    assert pid_ns(host, one) == pid_ns(host, 1)
    seen = host.run("nsenter", f"--target={one}", "--all", "--", "ps", "-o", "pid,args").stdout
    assert "/lib/systemd/systemd" in seen or "/sbin/init" in seen
    host.run("systemctl", "stop", "pod@hostpid")
