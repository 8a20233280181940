"""Manifest edges at start, in a booted systemd: zero and defaulted resources
and the pids-limit annotation as unit properties, limits above the host
that start with a warning, and manifests systemd would refuse that fail
with the validator's line instead of a D-Bus error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podman_sd.runtime.limits import cpu_weight
from tests.system.podhelpers import IMAGE, messages, unit_property, write_pod
from tests.testhost import TestHost

pytestmark = pytest.mark.system

EDGES = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: edges
  annotations: {{podman-sd.io/pids-limit: "64"}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: zero
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "1000"]
    resources: {{limits: {{cpu: "0", memory: "0"}}}}
  - name: alone
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "1000"]
    resources: {{limits: {{cpu: 500m, memory: 256M}}}}
  - name: big
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "1000"]
    resources:
      limits: {{cpu: 100000, memory: 1Ei}}
      requests: {{cpu: 10m, memory: 1Mi}}
"""


@pytest.fixture(scope="module")
def edges(host: TestHost) -> Iterator[TestHost]:
    write_pod(host, "edges", EDGES)
    started = host.run("systemctl", "start", "pod@edges", check=False)
    assert started.returncode == 0, "\n".join(messages(host, "pod@edges"))
    yield host
    host.run("systemctl", "stop", "pod@edges", check=False)


def test_a_zero_limit_is_no_limit(edges: TestHost) -> None:
    scope = "pod-edges-zero.scope"
    assert unit_property(edges, scope, "MemoryMax") == "infinity"
    assert unit_property(edges, scope, "CPUQuotaPerSecUSec") == "infinity"
    assert unit_property(edges, scope, "MemoryLow") == "0"
    # The request defaults to the limit, 0: the kubelet's minimum share.
    assert unit_property(edges, scope, "CPUWeight") == "1"


def test_limits_alone_are_the_requests_too(edges: TestHost) -> None:
    scope = "pod-edges-alone.scope"
    assert unit_property(edges, scope, "MemoryMax") == str(256 * 10**6)
    assert unit_property(edges, scope, "MemoryLow") == str(256 * 10**6)
    assert unit_property(edges, scope, "CPUQuotaPerSecUSec") == "500ms"
    assert unit_property(edges, scope, "CPUWeight") == str(cpu_weight(500))


def test_pids_limit_is_the_slices_tasks_max(edges: TestHost) -> None:
    assert unit_property(edges, "pod-edges.slice", "TasksMax") == "64"


def test_limits_above_the_host_start_with_a_warning(edges: TestHost) -> None:
    assert unit_property(edges, "pod@edges.service", "ActiveState") == "active"
    assert unit_property(edges, "pod-edges-big.scope", "MemoryMax") == str(2**60)
    warnings = [m for m in messages(edges, "pod@edges") if "limits.cpu" in m]
    assert warnings and warnings[0].count("warning:") == 1, warnings
    assert warnings[0].startswith("/etc/podman-sd/pods/edges.yaml:"), warnings
    assert 'spec.containers[2].resources.limits.cpu: "100000" is more than the' in warnings[0]


def failed_start(host: TestHost, name: str, manifest: str) -> list[str]:
    write_pod(host, name, manifest)
    result = host.run("systemctl", "start", f"pod@{name}", check=False)
    assert result.returncode != 0
    lines = messages(host, f"pod@{name}", "SYSLOG_IDENTIFIER=podman-sd")
    assert not any("Traceback" in m or "Invalid unit name" in m for m in lines), lines
    assert host.run("systemctl", "list-units", "--no-legend", f"pod-{name}*").stdout.strip() == ""
    return lines


def test_a_host_port_without_host_network_fails_the_start_with_its_line(host: TestHost) -> None:
    manifest = EDGES.replace("name: edges", "name: ports").replace(
        '    command: [sleep, "1000"]\n    resources: {limits: {cpu: "0", memory: "0"}}\n',
        '    command: [sleep, "1000"]\n    ports: [{containerPort: 80, hostPort: 8080}]\n',
    )
    lines = failed_start(host, "ports", manifest)
    assert any(
        "ports.yaml:13:43: spec.containers[0].ports[0].hostPort: publishing a port needs "
        "bridged pod networking" in m
        for m in lines
    ), lines


def test_unit_names_too_long_for_systemd_fail_the_start_with_their_line(host: TestHost) -> None:
    pod, app = "p" + "-p" * 31, "a" + "-a" * 31
    manifest = EDGES.replace("name: edges", f"name: {pod}").replace("name: big", f"name: {app}")
    lines = failed_start(host, pod, manifest)
    assert any(
        f"{pod}.yaml:19:11: spec.containers[2].name: the scope unit name of this app in this "
        "pod would be 323 characters, over systemd's 255" in m
        for m in lines
    ), lines


def host_network_pod(name: str, port: int) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  hostNetwork: true\n"
        f"  terminationGracePeriodSeconds: 0\n  containers:\n  - name: app\n    image: {IMAGE}\n"
        f"    imagePullPolicy: IfNotPresent\n    command: [sleep, '1000']\n"
        f"    ports: [{{containerPort: {port}}}]\n"
    )


def test_a_host_network_port_another_running_pod_has_fails_the_start(host: TestHost) -> None:
    """With the host's network a containerPort is a port of the host: a start
    checks it against the running pods, as validate does (hostPort or not)."""
    write_pod(host, "first", host_network_pod("first", 8999))
    host.run("systemctl", "start", "pod@first")
    try:
        lines = failed_start(host, "second", host_network_pod("second", 8999))
        assert any("host port 8999/TCP is also used by pod first" in m for m in lines), lines
    finally:
        host.run("systemctl", "stop", "pod@first")
