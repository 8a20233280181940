"""`make install` and `make uninstall` on a real systemd host (the test host)."""

from __future__ import annotations

import pytest

from tests.testhost import REPO, TestHost

pytestmark = pytest.mark.system

INSTALLED = (
    "/usr/local/bin/podman-sd",
    "/usr/local/bin/podman-sd-fetch",
    "/usr/local/lib/systemd/system/pod@.service",
    "/usr/local/lib/systemd/system-generators/podman-sd-generator",
    "/usr/local/lib/sysusers.d/podman-sd.conf",
    "/usr/local/lib/podman-sd/podman_sd/__init__.py",
    "/usr/local/share/man/man1/podman-sd.1",
)


def exists(host: TestHost, path: str) -> bool:
    return host.run("test", "-e", path, check=False).returncode == 0


def test_install_then_uninstall(testhost: TestHost) -> None:
    testhost.install_project()
    for path in INSTALLED:
        assert exists(testhost, path), path
    # The installed tool runs on the system Python, not a development venv.
    assert testhost.run("head", "-1", "/usr/local/bin/podman-sd").stdout.startswith(
        "#!/usr/bin/python3"
    )
    assert testhost.run("podman-sd", "--version").stdout.startswith("podman-sd ")
    assert testhost.run("getent", "passwd", "podman-sd-fetch").returncode == 0
    assert '"reject"' in testhost.run("cat", "/etc/podman-sd/policy.json").stdout
    assert "podman-sd launch %i" in testhost.run("systemctl", "cat", "pod@x.service").stdout
    testhost.run("make", "-C", str(REPO), "uninstall", "--no-print-directory")
    for path in INSTALLED:
        assert not exists(testhost, path), path
    # An administrator's configuration stays.
    assert exists(testhost, "/etc/podman-sd/policy.json")
