"""Scheduling fields are ignored with one warning each; other Kubernetes
features are one error each, naming the field and saying why."""

from __future__ import annotations

import pytest

from podman_sd.manifest import Severity, check_pod
from podman_sd.manifest.parse import IGNORED_SPEC, UNSUPPORTED_VOLUMES

from .helpers import MINIMAL, container_errors, pod, spec_errors

SINGLE_HOST = "not supported on a single host"

IGNORED_VALUES = {
    "nodeName": "node-1",
    "nodeSelector": "{disktype: ssd}",
    "affinity": "{nodeAffinity: {}}",
    "tolerations": "[{key: k, operator: Exists}]",
    "schedulingGates": "[{name: gate}]",
    "topologySpreadConstraints": "[{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: "
    "DoNotSchedule}]",
    "priorityClassName": "high",
    "schedulerName": "custom",
    "serviceAccountName": "builder",
    "serviceAccount": "builder",
    "automountServiceAccountToken": "false",
}


def test_every_ignored_field_is_listed() -> None:
    assert set(IGNORED_VALUES) == set(IGNORED_SPEC)


@pytest.mark.parametrize("field", sorted(IGNORED_VALUES))
def test_ignored_with_one_warning(field: str) -> None:
    p = pod(MINIMAL + f"  {field}: {IGNORED_VALUES[field]}\n")
    (warning,) = p.warnings
    assert warning.severity is Severity.WARNING
    assert warning.path == f"spec.{field}"
    assert (warning.line, warning.column) == (9, 3)
    assert warning.message.startswith("ignored: ")
    assert str(warning).startswith(f"test.yaml:9:3: warning: spec.{field}: ignored: ")


def test_all_ignored_together_give_one_warning_each() -> None:
    text = MINIMAL + "".join(f"  {k}: {v}\n" for k, v in IGNORED_VALUES.items())
    p = pod(text)
    assert [w.path for w in p.warnings] == [f"spec.{k}" for k in IGNORED_VALUES]


@pytest.mark.parametrize("source", sorted(UNSUPPORTED_VOLUMES))
def test_unsupported_volume_sources(source: str) -> None:
    found = spec_errors(
        f"""\
        volumes:
        - name: v
          {source}: {{}}
        containers:
        - name: a
          image: b
          volumeMounts: [{{name: v, mountPath: /v}}]
        """
    )
    # One error, and no follow-up about the mount or a missing source.
    assert found == [f"spec.volumes[0].{source}: {SINGLE_HOST} (use a hostPath or emptyDir volume)"]


@pytest.mark.parametrize(
    ("body", "path", "hint"),
    [
        ("envFrom: [{configMapRef: {name: c}}]", "envFrom", "list the variables under env"),
        (
            "env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]",
            "env[0].valueFrom.secretKeyRef",
            "write the value under env[].value",
        ),
        (
            "env: [{name: A, valueFrom: {configMapKeyRef: {name: c, key: k}}}]",
            "env[0].valueFrom.configMapKeyRef",
            "write the value under env[].value",
        ),
        (
            "env: [{name: A, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}]",
            "env[0].valueFrom.resourceFieldRef",
            "write the value under env[].value",
        ),
        ("livenessProbe: {grpc: {port: 2379}}", "livenessProbe.grpc", None),
        ("lifecycle: {preStop: {httpGet: {port: 80}}}", "lifecycle.preStop.httpGet", "use exec"),
        ("lifecycle: {preStop: {sleep: {seconds: 5}}}", "lifecycle.preStop.sleep", "use exec"),
        ("lifecycle: {stopSignal: SIGUSR1}", "lifecycle.stopSignal", None),
        (
            "securityContext: {seccompProfile: {type: RuntimeDefault}}",
            "securityContext.seccompProfile",
            None,
        ),
        (
            "securityContext: {seLinuxOptions: {level: 's0:c1'}}",
            "securityContext.seLinuxOptions",
            None,
        ),
        ("securityContext: {procMount: Unmasked}", "securityContext.procMount", None),
        ("volumeDevices: [{name: v, devicePath: /dev/x}]", "volumeDevices", None),
        ("restartPolicy: Always", "restartPolicy", "sidecar containers are not supported"),
        ("stdinOnce: true", "stdinOnce", None),
        ("resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]", "resizePolicy", None),
        ("ports: [{containerPort: 80, hostIP: 127.0.0.1}]", "ports[0].hostIP", None),
        ("resources: {claims: [{name: gpu}]}", "resources.claims", None),
    ],
)
def test_unsupported_container_fields(body: str, path: str, hint: str | None) -> None:
    found = container_errors(body)
    expected = f"spec.containers[0].{path}: {SINGLE_HOST}"
    assert len(found) == 1, found
    if hint:
        assert found[0].startswith(f"{expected} ({hint}"), found
    else:
        assert found[0] == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("imagePullSecrets", "[{name: regcred}]"),
        ("runtimeClassName", "gvisor"),
        ("ephemeralContainers", "[]"),
        ("readinessGates", "[{conditionType: x}]"),
        ("hostUsers", "false"),
        ("os", "{name: linux}"),
        ("overhead", "{cpu: 1}"),
        ("priority", "1000"),
        ("preemptionPolicy", "Never"),
        ("setHostnameAsFQDN", "true"),
        ("enableServiceLinks", "false"),
        ("resourceClaims", "[]"),
    ],
)
def test_unsupported_spec_fields(field: str, value: str) -> None:
    _, found = check_pod(MINIMAL + f"  {field}: {value}\n", "test.yaml")
    (error,) = found
    assert error.severity is Severity.ERROR
    assert error.path == f"spec.{field}"
    assert error.message.startswith(SINGLE_HOST)
    assert (error.line, error.column) == (9, 3)


@pytest.mark.parametrize(
    "field",
    [
        "seccompProfile: {type: RuntimeDefault}",
        "fsGroupChangePolicy: Always",
        "seLinuxOptions: {}",
        "windowsOptions: {}",
    ],
)
def test_unsupported_pod_security_context(field: str) -> None:
    found = spec_errors(f"securityContext: {{{field}}}\ncontainers: [{{name: a, image: b}}]")
    assert len(found) == 1 and SINGLE_HOST in found[0], found


def test_typo_is_unknown_not_unsupported() -> None:
    assert container_errors("volumeMount: []") == [
        'spec.containers[0].volumeMount: unknown field "volumeMount" (did you mean "volumeMounts"?)'
    ]
    assert spec_errors("containers: [{name: a, image: b}]\nvolume: []") == [
        'spec.volume: unknown field "volume" (did you mean "volumes"?)'
    ]


def test_read_only_metadata_is_ignored_with_warning() -> None:
    text = MINIMAL.replace("  name: test\n", "  name: test\n  uid: 1234-abcd\n") + (
        "status: {phase: Running}\n"
    )
    p = pod(text)
    assert [w.path for w in p.warnings] == ["metadata.uid", "status"]
