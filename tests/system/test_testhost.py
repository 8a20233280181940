"""The test host itself: it boots a real systemd fast, runs commands inside,
keeps its writes away from the real host, and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.testhost import CGROUP_PREFIX, TestHost, cgroup2_root

pytestmark = pytest.mark.system


def _leftovers(host: TestHost) -> list[str]:
    found = []
    if host.cgroup.exists():
        found.append(f"cgroup {host.cgroup}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if host.name in line:
            found.append(f"mount {line}")
    return found


def test_boots_to_running_within_three_seconds() -> None:
    with TestHost() as host:
        assert host.boot_seconds < 3.0, f"boot took {host.boot_seconds:.2f} s"
        assert host.run("systemctl", "is-system-running").stdout.strip() == "running"
        # It is really systemd as PID 1 of its own pid namespace.
        assert host.run("cat", "/proc/1/comm").stdout.strip() == "systemd"
        assert host.run("hostname").stdout.strip() == host.name
        # Its journal holds its own entries, not a copy of the machine's kernel log.
        assert host.run("journalctl", "-k", "-q", "--no-pager", check=False).stdout == ""


def test_writes_inside_do_not_reach_the_real_host() -> None:
    marker = f"testhost-marker-{os.getpid()}"
    with TestHost() as host:
        host.sh(f"echo inside > /tmp/{marker}; echo x > /etc/{marker}; mkdir -p /var/{marker}")
        assert host.run("cat", f"/tmp/{marker}").stdout == "inside\n"
        # podman-sd's state is on a real file system (a tmpfs), not overlayfs.
        fstype = host.run("stat", "-f", "-c", "%T", "/var/lib/podman-sd").stdout.strip()
        assert fstype == "tmpfs"
        # Its network is only its own loopback.
        links = host.run("ip", "-o", "link").stdout
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    for path in (f"/tmp/{marker}", f"/etc/{marker}", f"/var/{marker}"):
        assert not os.path.exists(path)


def test_teardown_leaves_no_process_mount_or_cgroup() -> None:
    host = TestHost()
    with host:
        pid1 = host.pid1
        # A transient service keeps running until the teardown kills it.
        host.run("systemd-run", "--unit=sleeper", "sleep", "1000")
        assert host.run("systemctl", "is-active", "sleeper").stdout.strip() == "active"
    assert not os.path.exists(f"/proc/{pid1}")
    assert _leftovers(host) == []


def test_teardown_after_a_failing_test_body() -> None:
    host = TestHost()
    with pytest.raises(RuntimeError), host:
        raise RuntimeError("the test failed")
    assert _leftovers(host) == []


def test_several_hosts_at_once_have_unique_names() -> None:
    with TestHost() as first, TestHost() as second:
        assert first.name != second.name
        first.sh("echo one > /etc/which")
        second.sh("echo two > /etc/which")
        assert first.run("cat", "/etc/which").stdout == "one\n"
        assert second.run("cat", "/etc/which").stdout == "two\n"
    stale = [p.name for p in cgroup2_root().iterdir() if p.name.startswith(CGROUP_PREFIX)]
    assert first.cgroup.name not in stale and second.cgroup.name not in stale
