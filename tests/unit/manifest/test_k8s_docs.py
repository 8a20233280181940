"""Example pods of the Kubernetes documentation: those in the subset load;
the others give exactly one error per unsupported field."""

from __future__ import annotations

from pathlib import Path

import pytest

from podman_sd.errors import ManifestError
from podman_sd.manifest import Severity, load_pod

DOCS = Path(__file__).parent / "k8s_docs"

LOADS = {
    "command-demo": [],
    "cpu-demo": [],
    "dependent-envars-demo": [],
    "dns-example": [],
    "envar-demo": [],
    "goproxy": [],
    "hostaliases-pod": [],
    "init-demo": [],
    "lifecycle-demo": [],
    "liveness-exec": [],
    "liveness-http": [],
    "memory-demo": [],
    "nginx": [],
    "redis": [],
    "security-context-demo": [],
    "security-context-demo-2": [],
    "security-context-demo-4": [],
    "share-process-namespace": [],
    "test-pd": [],
    "two-containers": [],
    # Scheduling only: a warning each.
    "nginx-ssd": ["spec.nodeSelector"],
    "nginx-toleration": ["spec.tolerations"],
    "with-node-affinity": ["spec.affinity"],
}

C = "spec.containers[0]"
FAILS = {
    "dapi-envars-fieldref": [
        f"{C}.env[0].valueFrom.fieldRef.fieldPath",
        f"{C}.env[4].valueFrom.fieldRef.fieldPath",
    ],
    "dapi-envars-resourcefieldref": [f"{C}.env[{i}].valueFrom.resourceFieldRef" for i in range(4)],
    "dapi-test-pod": [f"{C}.envFrom"],
    "envars-secret": [f"{C}.env[0].valueFrom.secretKeyRef"],
    "etcd-with-grpc": [f"{C}.livenessProbe.grpc"],
    "private-reg": ["spec.imagePullSecrets"],
    "security-context-demo-5": ["spec.securityContext.seccompProfile"],
    "task-pv-pod": ["spec.volumes[0].persistentVolumeClaim"],
    "volume-test": ["spec.volumes[0].projected"],
}


def test_every_file_is_listed() -> None:
    assert {p.stem for p in DOCS.glob("*.yaml")} == set(LOADS) | set(FAILS)


@pytest.mark.parametrize("name", sorted(LOADS))
def test_loads(name: str) -> None:
    pod = load_pod(DOCS / f"{name}.yaml")
    assert pod.name == name
    assert [w.path for w in pod.warnings] == LOADS[name]


@pytest.mark.parametrize("name", sorted(FAILS))
def test_one_error_per_unsupported_field(name: str) -> None:
    path = DOCS / f"{name}.yaml"
    with pytest.raises(ManifestError) as info:
        load_pod(path)
    found = info.value.diagnostics  # type: ignore[attr-defined]
    errors = [d for d in found if d.severity is Severity.ERROR]
    assert [d.path for d in errors] == FAILS[name]
    for d in errors:
        assert d.file == str(path) and d.line > 1
        assert "not supported on a single host" in d.message
    assert str(info.value).startswith(f"{path}:{errors[0].line}:{errors[0].column}: ")


def test_semantics_of_some_docs_pods() -> None:
    dns = load_pod(DOCS / "dns-example.yaml").spec
    assert dns.dns_config is not None and dns.dns_config.nameservers == ("192.0.2.1",)
    init = load_pod(DOCS / "init-demo.yaml").spec
    assert init.init_containers[0].command is not None
    assert init.init_containers[0].command[0] == "wget"
    env = load_pod(DOCS / "dependent-envars-demo.yaml").spec.containers[0].env
    assert env[5].value == "$$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)"
