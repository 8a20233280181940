"""The generator in a booted systemd: drop-ins from manifests at
daemon-reload, their effect on the unit, and a broken manifest's start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system.podhelpers import messages, unit_property, write_pod
from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout

pytestmark = pytest.mark.system

WEB = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    podman-sd.io/description: "The web front end"
    podman-sd.io/after: db
    podman-sd.io/wanted-by: multi-user.target
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 20
  containers:
  - name: app
    image: oci:/srv/images/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sleep, "1000"]
"""

BAD = """\
apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  containers:
  - name: app
    image: oci:/srv/images/busybox:latest
    resources:
      limits: {memory: "12 GB"}
"""


@pytest.fixture(scope="module")
def host(installed_host: TestHost) -> Iterator[TestHost]:
    build_busybox_layout(installed_host)
    accept_unsigned(installed_host, "oci:/srv/images")
    installed_host.write_file("/etc/podman-sd/pods/bad.yaml", BAD)
    write_pod(installed_host, "web", WEB)
    yield installed_host


def test_drop_in_reaches_the_unit(host: TestHost) -> None:
    unit = "pod@web.service"
    assert unit_property(host, unit, "Description") == "The web front end"
    assert unit_property(host, unit, "Restart") == "on-failure"
    assert unit_property(host, unit, "TimeoutStopUSec") == "35s"
    assert "pod@db.service" in unit_property(host, unit, "After").split()
    assert "pod@db.service" in unit_property(host, unit, "Wants").split()
    assert unit_property(host, unit, "SourcePath") == "/etc/podman-sd/pods/web.yaml"
    wanted = host.run("systemctl", "show", "-P", "Wants", "multi-user.target").stdout.split()
    assert unit in wanted
    host.run("systemctl", "start", "pod@web")
    assert unit_property(host, unit, "ActiveState") == "active"
    host.run("systemctl", "stop", "pod@web")


def test_a_broken_manifest_does_not_break_the_others_and_fails_its_start(host: TestHost) -> None:
    # bad.yaml got no drop-in, web.yaml did.
    assert (
        host.run("test", "-e", "/run/systemd/generator/pod@bad.service.d", check=False).returncode
        != 0
    )
    assert host.run("test", "-e", "/run/systemd/generator/pod@web.service.d").returncode == 0
    result = host.run("systemctl", "start", "pod@bad", check=False)
    assert result.returncode != 0
    status = host.run(
        "systemctl", "status", "pod@bad", "--no-pager", "-n", "20", check=False
    ).stdout
    assert "bad.yaml:10:24:" in status and '"12 GB" is not a quantity' in status, status
    assert "Traceback" not in status
    assert not any("Traceback" in m for m in messages(host, "pod@bad"))


def test_enable_of_a_pod_instance_works(host: TestHost) -> None:
    # pod@.service is a template with an [Install] section, not a generated unit.
    host.run("systemctl", "enable", "pod@other.service")
    assert (
        host.run(
            "test", "-L", "/etc/systemd/system/multi-user.target.wants/pod@other.service"
        ).returncode
        == 0
    )
    host.run("systemctl", "disable", "pod@other.service")
