"""hostPID and shareProcessNamespace: which pid namespace the apps get."""

from __future__ import annotations

import pytest

from tests.system.podhelpers import app_pid, messages, unit_property, wait_for, write_pod
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


LEAVES_A_CHILD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 2
{spec}  initContainers:
  - name: init
    image: oci:/srv/images/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "(exec sleep 1234567) & echo init-done"]
  containers:
  - name: app
    image: oci:/srv/images/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "(exec sleep 7654321) & echo app-done"]
"""


@pytest.mark.parametrize("spec", ["  shareProcessNamespace: true\n", "  hostPID: true\n"])
def test_an_app_ends_with_its_main_process_and_what_it_left_goes(host: TestHost, spec: str) -> None:
    """Without a PID namespace of its own, an app's background child would
    keep its output pipes, and so the app and the pod, alive: as runc does,
    the rest of the app's scope is ended with its main process, in init
    containers too."""
    name = "leaves" + ("shared" if "share" in spec else "host")
    write_pod(host, name, LEAVES_A_CHILD.format(name=name, policy="Never", spec=spec))
    # The init container's child must not hold the start either.
    host.run("systemctl", "start", f"pod@{name}", timeout=30)
    assert wait_for(lambda: unit_property(host, f"pod@{name}.service", "ActiveState")
                    == "inactive", timeout=20)  # fmt: skip
    assert unit_property(host, f"pod@{name}.service", "Result") == "success"
    for left in ("sleep 1234567", "sleep 7654321"):
        assert host.run("pgrep", "-f", left, check=False).stdout.strip() == "", left
    lines = messages(host, f"pod@{name}")
    assert "init-done" in lines and "app-done" in lines
