"""Edges the tester found: host ports, zero and defaulted resources, unit
name lengths, the pids-limit annotation, host capacity, messages, emptyDir
size limits on disk and file names validate accepts."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from podman_sd import names
from podman_sd.errors import ManifestError
from podman_sd.launcher import check_host
from podman_sd.manifest import ContainerPort, Diagnostic, Pod, Severity, host_checks, hostcheck
from podman_sd.manifest.diagnostics import show
from podman_sd.manifest.validate_cmd import run_validate
from podman_sd.runtime import limits

from .helpers import HEADER, MINIMAL, container, diagnostics, errors, pod

APP = "spec.containers[0]"


def properties(p: Pod, index: int = 0) -> dict[str, int]:
    return {n: v for n, _, v in limits.resource_properties(p.spec.containers[index].resources)}


def located(text: str, name: str = "test.yaml") -> list[str]:
    """Every diagnostic as validate prints it, without the file name."""
    return [str(d).removeprefix(f"{name}:") for d in diagnostics(text, name)]


# 1. hostPort


def test_host_port_without_host_network_is_an_error_at_the_field() -> None:
    text = MINIMAL + "    ports: [{containerPort: 80, hostPort: 8080}]\n"
    assert located(text) == [
        f"9:43: {APP}.ports[0].hostPort: publishing a port needs bridged pod networking, "
        "which podman-sd does not have yet; use hostNetwork: true"
    ]
    init = text.replace("containers:", "initContainers:") + "  containers: [{name: b, image: c}]\n"
    assert errors(init) == [
        "spec.initContainers[0].ports[0].hostPort: publishing a port needs bridged pod "
        "networking, which podman-sd does not have yet; use hostNetwork: true"
    ]


def test_host_port_with_host_network_must_equal_the_container_port() -> None:
    p = container("ports: [{containerPort: 80, hostPort: 80}]\n", "hostNetwork: true\n")
    assert p.spec.containers[0].ports == (ContainerPort(80, 80),)
    assert errors(
        MINIMAL + "    ports: [{containerPort: 80, hostPort: 8080}]\n  hostNetwork: true\n"
    ) == [f"{APP}.ports[0].hostPort: 8080 must equal containerPort (80) with hostNetwork"]
    # hostPort 0 is "unset" in Kubernetes: no host port, no error.
    assert container("ports: [{containerPort: 80, hostPort: 0}]").spec.containers[0].ports == (
        ContainerPort(80),
    )


# 2. zero limits and requests, 6. requests defaulted from limits


def test_a_zero_limit_is_no_limit() -> None:
    p = container("resources: {limits: {cpu: '0', memory: '0'}}")
    # The requests default to the limits: 0 cpu is the kubelet's minimum
    # share (weight 1); 0 memory is no protection (no MemoryLow=).
    assert properties(p) == {"CPUWeight": 1}
    p = container("resources: {limits: {cpu: 0, memory: 0Mi}, requests: {cpu: 0, memory: 0}}")
    assert properties(p) == {"CPUWeight": 1}


def test_zero_requests_under_real_limits() -> None:
    p = container("resources: {limits: {cpu: 500m, memory: 64Mi}, requests: {cpu: 0, memory: 0}}")
    assert properties(p) == {
        "MemoryMax": 64 * 2**20,
        "CPUQuotaPerSecUSec": 500_000,
        "CPUWeight": 1,
    }


def test_limits_alone_give_the_same_properties_as_equal_requests() -> None:
    alone = container("resources: {limits: {cpu: '2', memory: 1G}}")
    equal = container("resources: {limits: {cpu: '2', memory: 1G}, requests: {cpu: 2, memory: 1G}}")
    assert (
        properties(alone)
        == properties(equal)
        == {
            "MemoryMax": 10**9,
            "CPUQuotaPerSecUSec": 2_000_000,
            "MemoryLow": 10**9,
            "CPUWeight": limits.cpu_weight(2000),
        }
    )
    assert alone.spec.containers[0].resources == equal.spec.containers[0].resources
    # Per resource: an explicit request stays; only the missing one is defaulted.
    mixed = container("resources: {limits: {cpu: '2', memory: 1G}, requests: {cpu: 100m}}")
    requests = mixed.spec.containers[0].resources.requests
    assert requests.cpu is not None and requests.cpu.milli() == 100
    assert requests.memory is not None and requests.memory.value == 10**9


def test_pod_level_requests_default_to_pod_level_limits() -> None:
    p = container("", "resources: {limits: {cpu: '1', memory: 256Mi}}\n")
    props = {n: v for n, _, v in limits.pod_slice_properties(p)}
    assert props["CPUWeight"] == limits.cpu_weight(1000)
    assert props["MemoryLow"] == 256 * 2**20


def test_quantities_beyond_what_systemd_takes_are_no_limit() -> None:
    p = container("resources: {limits: {cpu: 1e25, memory: 1e30}}")
    assert properties(p) == {
        "MemoryMax": 2**64 - 1,
        "CPUQuotaPerSecUSec": 2**64 - 1,
        "MemoryLow": 2**64 - 1,
        "CPUWeight": 10000,
    }


# 3. unit names


def two_apps(pod_name: str, app: str) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod_name}\nspec:\n"
        f"  containers:\n  - name: short\n    image: b\n  - name: {app}\n    image: b\n"
    )


def test_unit_names_over_systemds_limit_are_refused_where_the_name_is() -> None:
    pod_name, app = "p" + "-p" * 31, "a" + "-a" * 31  # 63 characters each
    assert len(names.app_scope(pod_name, app)) == 323
    assert located(two_apps(pod_name, app), f"{pod_name}.yaml") == [
        "9:11: spec.containers[1].name: the scope unit name of this app in this pod would be "
        "323 characters, over systemd's 255 (each '-' of a name is escaped to the 4 "
        "characters \\x2d; use a shorter name)"
    ]
    # The longest scope name systemd takes is fine; one more "-" is not.
    app = "a-" * 9 + "a" * 43  # 61 characters, 9 of them "-"
    assert len(names.app_scope(pod_name, app)) == 255
    assert errors(two_apps(pod_name, app), f"{pod_name}.yaml") == []
    app = app[:-2] + "-a"
    assert [e.split(":")[0] for e in errors(two_apps(pod_name, app), f"{pod_name}.yaml")] == [
        "spec.containers[1].name"
    ]


def test_a_pod_name_whose_slice_name_is_too_long() -> None:
    pod_name = "p" + "-" * 61 + "p"  # a DNS label; its slice name is 256 characters
    assert len(names.pod_slice(pod_name)) == 256
    text = HEADER.replace("name: test", f"name: {pod_name}") + "spec:\n  containers:\n"
    text += "  - {name: a, image: b}\n"
    assert located(text, f"{pod_name}.yaml") == [
        "4:9: metadata.name: the pod's slice unit name would be 256 characters, over "
        "systemd's 255 (each '-' of a name is escaped to the 4 characters \\x2d; use a "
        "shorter name)"
    ]
    # From the file name alone: reported at metadata (or the top of the file).
    bare = "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: a, image: b}]\n"
    (found,) = diagnostics(bare, f"{pod_name}.yaml")
    assert (found.line, found.column, found.path) == (1, 1, "metadata.name")


# 4. podman-sd.io/pids-limit


def test_pids_limit_is_a_known_annotation_applied_to_the_slice() -> None:
    p = pod(
        MINIMAL.replace(
            "  name: test\n", "  name: test\n  annotations:\n    podman-sd.io/pids-limit: '64'\n"
        )
    )
    assert p.warnings == ()
    assert p.unit.pids_limit == 64
    assert ("TasksMax", "t", 64) in limits.pod_slice_properties(p)


@pytest.mark.parametrize("value", ["0", "-1", "max", "12abc", "²", "9" * 5000, "4194305", ""])
def test_a_bad_pids_limit_is_an_error_at_the_annotation(value: str) -> None:
    text = MINIMAL.replace(
        "  name: test\n", f"  name: test\n  annotations:\n    podman-sd.io/pids-limit: '{value}'\n"
    )
    (found,) = [d for d in diagnostics(text) if d.severity is Severity.ERROR]
    assert (found.line, found.column) == (6, 30)
    assert found.path == "metadata.annotations[podman-sd.io/pids-limit]"
    assert "is not a number of tasks (1 to 4194304)" in found.message


def test_restart_sec_with_digits_int_refuses_is_an_error_not_a_crash() -> None:
    for value in ("²", "9" * 5000):
        text = MINIMAL.replace(
            "  name: test\n",
            f"  name: test\n  annotations:\n    podman-sd.io/restart-sec: '{value}'\n",
        )
        assert [e.split(":", 1)[0] for e in errors(text)] == [
            "metadata.annotations[podman-sd.io/restart-sec]"
        ]


# 5. host capacity


@pytest.fixture
def small_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host of 2 CPUs and 1Gi of memory."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(hostcheck, "_mem_total", lambda: 2**30)


def resources_pod(body: str) -> str:
    return MINIMAL + f"    resources: {body}\n"


@pytest.mark.usefixtures("small_host")
def test_limits_above_the_host_are_a_warning_in_validate_and_at_start() -> None:
    text = resources_pod("{limits: {cpu: 64, memory: 8Gi}, requests: {cpu: 1, memory: 512Mi}}")
    assert located(text) == [
        f'9:31: warning: {APP}.resources.limits.cpu: "64" is more than the 2 CPUs of this '
        "host (allowed for a limit; it never binds)",
        f'9:43: warning: {APP}.resources.limits.memory: "8Gi" is more than the 1024Mi of '
        "memory of this host (allowed for a limit; it never binds)",
    ]
    p = pod(text)
    assert len(p.warnings) == 2  # the launcher prints the pod's warnings
    assert host_checks(p, (), Severity.ERROR) == []
    check_host(p)  # the start goes on


@pytest.mark.usefixtures("small_host")
def test_requests_above_the_host_are_an_error_at_start_at_their_position() -> None:
    text = resources_pod("{requests: {cpu: 3, memory: 2Gi}}")
    p = pod(text)
    assert host_checks(p, (), Severity.ERROR) == [
        Diagnostic(
            "test.yaml",
            9,
            33,
            f"{APP}.resources.requests.cpu",
            '"3" is more than the 2 CPUs of this host; a request must fit the host',
        ),
        Diagnostic(
            "test.yaml",
            9,
            44,
            f"{APP}.resources.requests.memory",
            '"2Gi" is more than the 1024Mi of memory of this host; a request must fit the host',
        ),
    ]
    assert all(d.severity is Severity.WARNING for d in host_checks(p))
    with pytest.raises(ManifestError, match=r"^test.yaml:9:33: spec.containers\[0\]"):
        check_host(p)


@pytest.mark.usefixtures("small_host")
def test_a_limit_without_a_request_is_the_request() -> None:
    p = pod(resources_pod("{limits: {cpu: 100000}}"))
    assert p.warnings == ()
    (found,) = host_checks(p, (), Severity.ERROR)
    assert (found.line, found.column, found.path) == (9, 31, f"{APP}.resources.limits.cpu")
    assert found.message == (
        '"100000" is more than the 2 CPUs of this host; with no requests.cpu it is also the '
        "request, which must fit the host (set a smaller requests.cpu)"
    )


@pytest.mark.usefixtures("small_host")
def test_the_requests_of_all_apps_must_fit_together() -> None:
    text = HEADER + (
        "spec:\n  initContainers:\n  - {name: i, image: b, resources: {requests: {cpu: 2}}}\n"
        "  containers:\n  - {name: a, image: b, resources: {requests: {cpu: 1500m}}}\n"
        "  - {name: b, image: b, resources: {requests: {cpu: 1}}}\n"
    )
    (found,) = host_checks(pod(text), (), Severity.ERROR)
    assert (found.line, found.column) == (10, 53)
    assert found.path == "spec.containers[1].resources.requests.cpu"
    assert (
        found.message == "the pod's cpu requests add up to 2500m, more than the 2 CPUs of this host"
    )


@pytest.mark.usefixtures("small_host")
def test_validate_warns_where_the_start_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODMAN_SD_PODS_DIR", str(tmp_path / "none"))
    path = tmp_path / "test.yaml"
    path.write_text(resources_pod("{requests: {memory: 2Gi}}"))
    out = io.StringIO()
    assert run_validate([path], False, out) == 0
    assert out.getvalue().splitlines() == [
        f'{path}:9:36: warning: {APP}.resources.requests.memory: "2Gi" is more than the '
        "1024Mi of memory of this host; a request must fit the host",
        f"{path}: valid: pod test, 1 container, 1 warning",
    ]


# 7. messages


def test_values_above_the_maximum_say_the_range() -> None:
    assert errors(MINIMAL + "  terminationGracePeriodSeconds: 99999999999999999999999\n") == [
        "spec.terminationGracePeriodSeconds: 99999999999999999999999 is out of range "
        "(from 0 to 2147483647)"
    ]
    assert errors(MINIMAL + "    securityContext: {runAsUser: 99999999999}\n") == [
        f"{APP}.securityContext.runAsUser: 99999999999 is out of range (from 0 to 2147483647)"
    ]
    # Below the minimum, with no real maximum, "at least" says it all.
    assert errors(MINIMAL + "    securityContext: {runAsUser: -1}\n") == [
        f"{APP}.securityContext.runAsUser: -1 is out of range (at least 0)"
    ]


@pytest.mark.parametrize("text", ["---\n", "null\n", "~\n", "--- null\n", "# nothing\n---\n"])
def test_an_empty_document_is_an_empty_manifest(text: str) -> None:
    assert [str(d) for d in diagnostics(text, "web.yaml")] == [
        "web.yaml:1:1: the manifest is empty (expected a Pod)"
    ]


def test_names_are_shown_as_written() -> None:
    assert errors(MINIMAL.replace("name: app", "name: ünï")) == [
        f"{APP}.name: \"ünï\" is not a DNS label (lower-case letters, digits and '-', "
        "starting and ending with a letter or digit)"
    ]
    # What would not show as itself is still escaped: control and bidi characters.
    assert show("a\nb\x7f\u202ec\u2028") == '"a\\nb\\u007f\\u202ec\\u2028"'
    assert show("日本\U0001f600") == '"日本\U0001f600"'
    assert show("\U000e0001") == '"\\udb40\\udc01"'


# 8. emptyDir.sizeLimit on disk


def test_size_limit_of_a_disk_empty_dir_is_a_warning() -> None:
    text = MINIMAL + "  volumes:\n  - name: d\n    emptyDir: {sizeLimit: 1Gi}\n"
    assert located(text) == [
        "11:27: warning: spec.volumes[0].emptyDir.sizeLimit: not enforced for an emptyDir on "
        "disk; use medium: Memory for a hard limit"
    ]
    assert len(pod(text).warnings) == 1  # printed at start too
    memory = text.replace("{sizeLimit: 1Gi}", "{medium: Memory, sizeLimit: 1Gi}")
    assert diagnostics(memory) == []


# 9. file names the generator does not read


def test_validate_warns_about_a_file_name_the_generator_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODMAN_SD_PODS_DIR", str(tmp_path / "none"))
    yml = tmp_path / "test.yml"
    yml.write_text(MINIMAL)
    out = io.StringIO()
    assert run_validate([yml], False, out) == 0
    assert out.getvalue().splitlines() == [
        f"{yml}: warning: the generator reads only /etc/podman-sd/pods/NAME.yaml files: "
        "name it test.yaml, or pod@test.service will not find it",
        f"{yml}: valid: pod test, 1 container, 1 warning",
    ]
    yaml = tmp_path / "test.yaml"
    yaml.write_text(MINIMAL)
    out = io.StringIO()
    assert run_validate([yaml], False, out) == 0
    assert out.getvalue().splitlines() == [f"{yaml}: valid: pod test, 1 container"]
    # A stem other than metadata.name was already an error.
    other = tmp_path / "other.yaml"
    other.write_text(MINIMAL)
    assert run_validate([other], False, io.StringIO()) == 1


def test_termination_message_policy_as_kubernetes_has_it() -> None:
    """`kubectl get pod -o yaml` writes terminationMessagePolicy: File into
    every container: such a manifest must run here unchanged."""
    from podman_sd.manifest.model import TerminationMessagePolicy

    assert container("").spec.containers[0].termination_message_policy is (
        TerminationMessagePolicy.FILE
    )
    for value, policy in (
        ("File", TerminationMessagePolicy.FILE),
        ("FallbackToLogsOnError", TerminationMessagePolicy.FALLBACK_TO_LOGS_ON_ERROR),
    ):
        parsed = container(f"    terminationMessagePolicy: {value}\n").spec.containers[0]
        assert parsed.termination_message_policy is policy
    wrong = errors(MINIMAL + "    terminationMessagePolicy: Logs\n")
    assert len(wrong) == 1 and "terminationMessagePolicy" in wrong[0] and "Logs" in wrong[0]
