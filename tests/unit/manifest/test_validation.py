"""What the API server would reject is an error naming the field, the bad
value and what would be accepted."""

from __future__ import annotations

import pytest

from podman_sd.errors import ManifestError
from podman_sd.manifest import parse_pod

from .helpers import HEADER, MINIMAL, container_errors, errors, spec_errors

C = "spec.containers[0]"


def test_issue_example_message() -> None:
    text = MINIMAL + "    resources:\n      limits:\n        memory: 12 GB\n"
    with pytest.raises(ManifestError) as info:
        parse_pod(text, "test.yaml")
    assert str(info.value) == (
        f'test.yaml:11:17: {C}.resources.limits.memory: "12 GB" is not a quantity '
        "(examples: 512Mi, 2G, 500m, 1.5)"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "imagePullPolicy: Sometimes",
            f'{C}.imagePullPolicy: "Sometimes" is not one of: Always, IfNotPresent, Never',
        ),
        ("command: sh -c true", f'{C}.command: "sh -c true" is a string, expected a list'),
        ("args: [1]", f'{C}.args[0]: 1 is a number, expected a string (quote it: "1")'),
        (
            "env: [{name: A, value: 8080}]",
            f'{C}.env[0].value: 8080 is a number, expected a string (quote it: "8080")',
        ),
        (
            "env: [{name: A, value: yes}]",
            f'{C}.env[0].value: true is a boolean, expected a string (quote it: "yes")',
        ),
        (
            "env: [{name: 'A=B', value: x}]",
            f'{C}.env[0].name: "A=B" is not an environment variable name',
        ),
        ("env: [{name: 1A, value: x}]", f'{C}.env[0].name: "1A" is not an environment'),
        ("env: [{value: x}]", f"{C}.env[0].name: required field is missing"),
        (
            "env: [{name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]",
            f"{C}.env[0].valueFrom: cannot be combined with value",
        ),
        (
            "env: [{name: A, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]",
            f'{C}.env[0].valueFrom.fieldRef.fieldPath: "spec.nodeName" is not supported on a '
            "single host",
        ),
        (
            "env: [{name: A, valueFrom: {fieldRef: {fieldPath: nonsense}}}]",
            f'{C}.env[0].valueFrom.fieldRef.fieldPath: "nonsense" is not a pod field',
        ),
        (
            "env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.name, apiVersion: v2}}}]",
            f'{C}.env[0].valueFrom.fieldRef.apiVersion: "v2" is not "v1"',
        ),
        ("env: [{name: A, valueFrom: {}}]", f"{C}.env[0].valueFrom: needs a source: fieldRef"),
        ("workingDir: relative", f'{C}.workingDir: "relative" is not an absolute path'),
        (
            "ports: [{containerPort: 0}]",
            f"{C}.ports[0].containerPort: 0 is out of range (from 1 to 65535)",
        ),
        ("ports: [{containerPort: 65536}]", f"{C}.ports[0].containerPort: 65536 is out of range"),
        (
            "ports: [{containerPort: '80'}]",
            f'{C}.ports[0].containerPort: "80" is a string, expected an integer',
        ),
        (
            "ports: [{containerPort: 80.5}]",
            f"{C}.ports[0].containerPort: 80.5 is a number, expected an integer",
        ),
        (
            "ports: [{containerPort: 80, hostPort: 70000}]",
            f"{C}.ports[0].hostPort: 70000 is out of range",
        ),
        (
            "ports: [{containerPort: 80, protocol: tcp}]",
            f'{C}.ports[0].protocol: "tcp" is not one of: TCP, UDP, SCTP',
        ),
        ("ports: [{protocol: UDP}]", f"{C}.ports[0].containerPort: required field is missing"),
        (
            "ports: [{containerPort: 80, name: HTTP}]",
            f'{C}.ports[0].name: "HTTP" is not a port name',
        ),
        (
            "ports: [{containerPort: 80, name: a-very-long-port-name}]",
            f'{C}.ports[0].name: "a-very-long-port-name" is not a port name',
        ),
        ("ports: [{containerPort: 80, name: '8080'}]", f'{C}.ports[0].name: "8080" is not a '),
        (
            "ports: [{containerPort: 80, name: web}, {containerPort: 81, name: web}]",
            f'{C}.ports[1].name: "web" is a duplicate: port names must be unique',
        ),
        (
            "volumeMounts: [{name: nope, mountPath: /x}]",
            f'{C}.volumeMounts[0].name: "nope" names no volume in spec.volumes (volumes: none)',
        ),
        ("resources: {limits: {memory: -1Gi}}", f'{C}.resources.limits.memory: "-1Gi" is negative'),
        ("resources: {limits: {cpu: true}}", f"{C}.resources.limits.cpu: true is not a quantity"),
        (
            "resources: {limits: {cpu: 1}, requests: {cpu: 2}}",
            f'{C}.resources.requests.cpu: "2" is more than the limit "1"',
        ),
        ("resources: {limits: {gpu: 1}}", f'{C}.resources.limits.gpu: unknown resource "gpu"'),
        (
            "resources: {limits: {nvidia.com/gpu: 1}}",
            f"{C}.resources.limits.nvidia.com/gpu: not supported on a single host",
        ),
        (
            "resources: {limits: {hugepages-2Mi: 1Gi}}",
            f"{C}.resources.limits.hugepages-2Mi: not supported on a single host",
        ),
        ("resources: {limits: []}", f"{C}.resources.limits: is a list, expected a mapping"),
        (
            "securityContext: {runAsUser: -1}",
            f"{C}.securityContext.runAsUser: -1 is out of range (at least 0)",
        ),
        (
            "securityContext: {runAsUser: 0, runAsNonRoot: true}",
            f"{C}.securityContext.runAsUser: 0 (root) contradicts runAsNonRoot: true",
        ),
        (
            "securityContext: {privileged: yes, allowPrivilegeEscalation: no}",
            f"{C}.securityContext.allowPrivilegeEscalation: false cannot be combined with "
            "privileged: true",
        ),
        (
            "securityContext: {privileged: 'true'}",
            f'{C}.securityContext.privileged: "true" is a string, expected true or false',
        ),
        (
            "securityContext: {capabilities: {add: [NET_ADMINN]}}",
            f'{C}.securityContext.capabilities.add[0]: "NET_ADMINN" is not a Linux capability '
            '(did you mean "NET_ADMIN"?)',
        ),
        ("livenessProbe: {}", f"{C}.livenessProbe: needs a handler: exec, httpGet or tcpSocket"),
        (
            "livenessProbe: {exec: {command: [a]}, tcpSocket: {port: 1}}",
            f"{C}.livenessProbe: has 2 handlers (exec, tcpSocket); give exactly one",
        ),
        (
            "livenessProbe: {exec: {command: []}}",
            f"{C}.livenessProbe.exec.command: needs at least one word",
        ),
        (
            "livenessProbe: {httpGet: {port: web}}",
            f'{C}.livenessProbe.httpGet.port: "web" names no port of this container',
        ),
        ("livenessProbe: {httpGet: {port: 0}}", f"{C}.livenessProbe.httpGet.port: 0 is out of"),
        (
            "livenessProbe: {httpGet: {port: 80, scheme: FTP}}",
            f'{C}.livenessProbe.httpGet.scheme: "FTP" is not one of: HTTP, HTTPS',
        ),
        (
            "livenessProbe: {httpGet: {port: 80, httpHeaders: [{name: 'a b', value: x}]}}",
            f'{C}.livenessProbe.httpGet.httpHeaders[0].name: "a b" is not an HTTP header name',
        ),
        (
            "livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}",
            f"{C}.livenessProbe.successThreshold: 2 must be 1 for a livenessProbe",
        ),
        (
            "livenessProbe: {tcpSocket: {port: 80}, periodSeconds: -1}",
            f"{C}.livenessProbe.periodSeconds: -1 is out of range",
        ),
        (
            "readinessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 5}",
            f"{C}.readinessProbe.terminationGracePeriodSeconds: must not be set for a "
            "readinessProbe",
        ),
        ("lifecycle: {preStop: {}}", f"{C}.lifecycle.preStop: needs a handler: exec"),
        ("stdin: 1", f"{C}.stdin: 1 is a number, expected true or false"),
        ("terminationMessagePath: log", f'{C}.terminationMessagePath: "log" is not an absolute'),
        (
            "imagePullPolicyy: Always",
            f'{C}.imagePullPolicyy: unknown field "imagePullPolicyy" '
            '(did you mean "imagePullPolicy"?)',
        ),
    ],
)
def test_container_errors(body: str, expected: str) -> None:
    found = container_errors(body)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("containers: []", "spec.containers: needs at least one container"),
        (
            "restartPolicy: always\ncontainers: [{name: a, image: b}]",
            'spec.restartPolicy: "always" is not one of: Always, OnFailure, Never',
        ),
        (
            "terminationGracePeriodSeconds: -1\ncontainers: [{name: a, image: b}]",
            "spec.terminationGracePeriodSeconds: -1 is out of range",
        ),
        (
            "activeDeadlineSeconds: 0\ncontainers: [{name: a, image: b}]",
            "spec.activeDeadlineSeconds: 0 is out of range",
        ),
        (
            "hostname: Web_1\ncontainers: [{name: a, image: b}]",
            'spec.hostname: "Web_1" is not a DNS label',
        ),
        (
            "subdomain: a.b\ncontainers: [{name: a, image: b}]",
            'spec.subdomain: "a.b" is not a DNS label',
        ),
        (
            "hostPID: true\nshareProcessNamespace: true\ncontainers: [{name: a, image: b}]",
            "spec.shareProcessNamespace: true cannot be combined with hostPID: true",
        ),
        (
            "hostNetwork: true\ncontainers:\n- {name: a, image: b, ports: "
            "[{containerPort: 80, hostPort: 8080}]}",
            "spec.containers[0].ports[0].hostPort: 8080 must equal containerPort (80)",
        ),
        (
            "hostNetwork: true\ncontainers:\n- {name: a, image: b, ports: "
            "[{containerPort: 80, hostPort: 80}, {containerPort: 80, hostPort: 80}]}",
            "spec.containers[0].ports[1].hostPort: 80/TCP is a duplicate: host ports must be unique",
        ),
        (
            "containers:\n- {name: a, image: b}\n- {name: a, image: c}",
            'spec.containers[1].name: "a" is a duplicate: container names must be unique',
        ),
        (
            "initContainers: [{name: a, image: b}]\ncontainers: [{name: a, image: c}]",
            'spec.containers[0].name: "a" is a duplicate',
        ),
        ("containers: [{name: Web, image: b}]", 'spec.containers[0].name: "Web" is not a DNS'),
        (
            "containers: [{name: " + "a" * 64 + ", image: b}]",
            'spec.containers[0].name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..." '
            "is longer than 63 characters, the limit of a DNS label",
        ),
        (
            "containers: [{name: a, image: ''}]",
            'spec.containers[0].image: "" is empty, a value is required',
        ),
        (
            "containers: [{name: a, image: 'Bad Image'}]",
            'spec.containers[0].image: "Bad Image" is not an image reference (examples: ',
        ),
        (
            "containers: [{name: a, image: ' busybox'}]",
            'spec.containers[0].image: " busybox" has leading or trailing whitespace',
        ),
        (
            "containers: [{name: a, image: 'oci:relative/path'}]",
            'spec.containers[0].image: "oci:relative/path" needs an absolute path after oci:',
        ),
        ("containers: [{image: b}]", "spec.containers[0].name: required field is missing"),
        ("containers: [{name: a}]", "spec.containers[0].image: required field is missing"),
        (
            "initContainers: [{name: i, image: b, livenessProbe: {exec: {command: [x]}}}]\n"
            "containers: [{name: a, image: b}]",
            "spec.initContainers[0].livenessProbe: is not allowed for init containers",
        ),
        (
            "initContainers: [{name: i, image: b, lifecycle: {}}]\n"
            "containers: [{name: a, image: b}]",
            "spec.initContainers[0].lifecycle: is not allowed for init containers",
        ),
        (
            "volumes: [{name: v}]\ncontainers: [{name: a, image: b}]",
            "spec.volumes[0]: needs a source: hostPath or emptyDir",
        ),
        (
            "volumes: [{name: v, emptyDir: {}, hostPath: {path: /x}}]\n"
            "containers: [{name: a, image: b}]",
            "spec.volumes[0]: has both hostPath and emptyDir; give exactly one",
        ),
        (
            "volumes: [{name: v, emptyDir: {}}, {name: v, emptyDir: {}}]\n"
            "containers: [{name: a, image: b}]",
            'spec.volumes[1].name: "v" is a duplicate: volume names must be unique',
        ),
        (
            "volumes: [{name: V, emptyDir: {}}]\ncontainers: [{name: a, image: b}]",
            'spec.volumes[0].name: "V" is not a DNS label',
        ),
        (
            "volumes: [{name: v, hostPath: {path: data}}]\ncontainers: [{name: a, image: b}]",
            'spec.volumes[0].hostPath.path: "data" is not an absolute path',
        ),
        (
            "volumes: [{name: v, hostPath: {path: /a/../b}}]\ncontainers: [{name: a, image: b}]",
            "spec.volumes[0].hostPath.path: \"/a/../b\" must not contain '..'",
        ),
        (
            "volumes: [{name: v, hostPath: {path: /a, type: Dir}}]\n"
            "containers: [{name: a, image: b}]",
            'spec.volumes[0].hostPath.type: "Dir" is not "" or one of: DirectoryOrCreate',
        ),
        (
            "volumes: [{name: v, emptyDir: {medium: Disk}}]\ncontainers: [{name: a, image: b}]",
            'spec.volumes[0].emptyDir.medium: "Disk" is not "" or "Memory"',
        ),
        (
            "volumes: [{name: v, emptyDir: {medium: HugePages}}]\n"
            "containers: [{name: a, image: b}]",
            'spec.volumes[0].emptyDir.medium: "HugePages" is not supported here',
        ),
        (
            "volumes: [{name: v, emptyDir: {sizeLimit: lots}}]\ncontainers: [{name: a, image: b}]",
            'spec.volumes[0].emptyDir.sizeLimit: "lots" is not a quantity',
        ),
        (
            "volumes: [{name: v, emptyDir: {}}]\ncontainers:\n- name: a\n  image: b\n"
            "  volumeMounts:\n  - {name: v, mountPath: /x}\n  - {name: v, mountPath: /x/}",
            'spec.containers[0].volumeMounts[1].mountPath: "/x/" is a duplicate',
        ),
        (
            "volumes: [{name: v, emptyDir: {}}]\ncontainers:\n- name: a\n  image: b\n"
            "  volumeMounts: [{name: v, mountPath: x}]",
            'spec.containers[0].volumeMounts[0].mountPath: "x" is not an absolute path',
        ),
        (
            "volumes: [{name: v, emptyDir: {}}]\ncontainers:\n- name: a\n  image: b\n"
            "  volumeMounts: [{name: v, mountPath: /x, subPath: ../up}]",
            "spec.containers[0].volumeMounts[0].subPath: \"../up\" must not contain '..'",
        ),
        (
            "volumes: [{name: v, emptyDir: {}}]\ncontainers:\n- name: a\n  image: b\n"
            "  volumeMounts: [{name: v, mountPath: /x, subPath: /abs}]",
            'spec.containers[0].volumeMounts[0].subPath: "/abs" is not a relative path',
        ),
        (
            "volumes: [{name: data, emptyDir: {}}]\ncontainers:\n- name: a\n  image: b\n"
            "  volumeMounts: [{name: dta, mountPath: /x}]",
            'spec.containers[0].volumeMounts[0].name: "dta" names no volume in spec.volumes '
            '(did you mean "data"?)',
        ),
        (
            "hostAliases: [{ip: 300.1.1.1, hostnames: [a]}]\ncontainers: [{name: a, image: b}]",
            'spec.hostAliases[0].ip: "300.1.1.1" is not an IP address',
        ),
        (
            "hostAliases: [{ip: 1.1.1.1, hostnames: [A_B]}]\ncontainers: [{name: a, image: b}]",
            'spec.hostAliases[0].hostnames[0]: "A_B" is not a DNS name',
        ),
        (
            "dnsPolicy: None\ncontainers: [{name: a, image: b}]",
            'spec.dnsConfig: is required when dnsPolicy is "None"',
        ),
        (
            "dnsPolicy: None\ndnsConfig: {searches: [a.b]}\ncontainers: [{name: a, image: b}]",
            'spec.dnsConfig.nameservers: needs at least one when dnsPolicy is "None"',
        ),
        (
            "dnsConfig: {nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4]}\n"
            "containers: [{name: a, image: b}]",
            "spec.dnsConfig.nameservers: 4 nameservers are more than 3",
        ),
        (
            "dnsConfig: {nameservers: [dns.google]}\ncontainers: [{name: a, image: b}]",
            'spec.dnsConfig.nameservers[0]: "dns.google" is not an IP address',
        ),
        (
            "dnsConfig: {options: [{value: x}]}\ncontainers: [{name: a, image: b}]",
            "spec.dnsConfig.options[0].name: required field is missing",
        ),
        (
            'dnsConfig: {options: [{name: "ndots\\nnameserver 6.6.6.6"}]}\n'
            "containers: [{name: a, image: b}]",
            'spec.dnsConfig.options[0].name: "ndots\\nnameserver 6.6.6.6" is not one resolv.conf '
            "option word (no spaces, line breaks or ':')",
        ),
        (
            'dnsConfig: {options: [{name: ndots, value: "2 edns0"}]}\n'
            "containers: [{name: a, image: b}]",
            'spec.dnsConfig.options[0].value: "2 edns0" is not one resolv.conf option word '
            "(no spaces, line breaks)",
        ),
        (
            "securityContext: {sysctls: [{name: kernel.hostname, value: x}]}\n"
            "containers: [{name: a, image: b}]",
            'spec.securityContext.sysctls[0].name: "kernel.hostname" is not namespaced',
        ),
        (
            "securityContext: {sysctls: [{name: 'bad name', value: x}]}\n"
            "containers: [{name: a, image: b}]",
            'spec.securityContext.sysctls[0].name: "bad name" is not a sysctl name',
        ),
        (
            "hostNetwork: true\nsecurityContext: {sysctls: [{name: net.core.somaxconn, "
            "value: '1024'}]}\ncontainers: [{name: a, image: b}]",
            'spec.securityContext.sysctls[0].name: "net.core.somaxconn" would change the host\'s',
        ),
        (
            "securityContext: {supplementalGroups: [a]}\ncontainers: [{name: a, image: b}]",
            'spec.securityContext.supplementalGroups[0]: "a" is a string, expected an integer',
        ),
        (
            "securityContext: {runAsUser: 0, runAsNonRoot: true}\n"
            "containers: [{name: a, image: b}]",
            "spec.securityContext.runAsUser: 0 (root) contradicts runAsNonRoot: true",
        ),
        (
            "resources: {limits: {ephemeral-storage: 1Gi}}\ncontainers: [{name: a, image: b}]",
            "spec.resources.limits.ephemeral-storage: not supported on a single host (pod-level",
        ),
    ],
)
def test_spec_errors(body: str, expected: str) -> None:
    found = spec_errors(body)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kind: Pod\nspec: {containers: [{name: a, image: b}]}",
            "apiVersion: required field is missing",
        ),
        ("apiVersion: apps/v1\nkind: Pod\nspec: {}", 'apiVersion: "apps/v1" is not "v1"'),
        (
            "apiVersion: v1\nkind: Service\nspec: {}",
            'kind: "Service" is not supported: a manifest holds one Pod (kind: Pod)',
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: test}", "spec: required field is missing"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: other}\n"
            "spec: {containers: [{name: a, image: b}]}",
            'metadata.name: "other" differs from the file name "test.yaml" (name the file '
            "other.yaml, or drop metadata.name)",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {namespace: Prod}\n"
            "spec: {containers: [{name: a, image: b}]}",
            'metadata.namespace: "Prod" is not a DNS label',
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {labels: {app: 'a b'}}\n"
            "spec: {containers: [{name: a, image: b}]}",
            'metadata.labels[app]: "a b" is not a label value',
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {labels: {'-bad': x}}\n"
            "spec: {containers: [{name: a, image: b}]}",
            'metadata.labels[-bad]: "-bad" is not a valid key',
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {labels: {app: 1}}\n"
            "spec: {containers: [{name: a, image: b}]}",
            'metadata.labels[app]: 1 is a number, expected a string (quote it: "1")',
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {annotations: {'Bad_Prefix.x/y': x}}\n"
            "spec: {containers: [{name: a, image: b}]}",
            'metadata.annotations[Bad_Prefix.x/y]: "Bad_Prefix.x/y" has a prefix that is not a',
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {generateName: x-}\n"
            "spec: {containers: [{name: a, image: b}]}",
            "metadata.generateName: not supported on a single host",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: test}\nspec: {containers: "
            "[{name: a, image: b}]}\nextra: 1",
            'extra: unknown field "extra"',
        ),
    ],
)
def test_top_level_errors(text: str, expected: str) -> None:
    found = errors(text)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


def test_bad_file_name_without_metadata_name() -> None:
    found = errors(
        "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: b}]}", "My Pod.yaml"
    )
    assert found == [
        'metadata.name: the file name gives the pod name "My Pod", which is not a DNS label '
        "(lower-case letters, digits and '-', starting and ending with a letter or digit)"
    ]


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ("podman-sd.io/after: 'db, Bad_Name'", '"Bad_Name" is not a DNS label'),
        ("podman-sd.io/after: test", '"test" is this pod itself'),
        ("podman-sd.io/wanted-by: multi-user", '"multi-user" is not a systemd unit name'),
        ("podman-sd.io/restart-sec: soon", '"soon" is not a whole number of seconds'),
        ("podman-sd.io/restart-sec: 5", '5 is a number, expected a string (quote it: "5")'),
    ],
)
def test_annotation_errors(annotations: str, expected: str) -> None:
    text = HEADER + "  annotations:\n    " + annotations + "\n" + MINIMAL[len(HEADER) :]
    found = errors(text)
    assert len(found) == 1, found
    assert expected in found[0], found


def test_unknown_podman_sd_annotation_is_a_warning() -> None:
    from .helpers import pod

    text = HEADER + "  annotations:\n    podman-sd.io/wantedby: x\n" + MINIMAL[len(HEADER) :]
    (warning,) = pod(text).warnings
    assert warning.path == "metadata.annotations[podman-sd.io/wantedby]"
    assert 'unknown podman-sd annotation (did you mean "wanted-by"?)' in warning.message


def test_fractional_memory_is_a_warning() -> None:
    from .helpers import container

    p = container("resources: {limits: {memory: 1.5}}")
    (warning,) = p.warnings
    assert "is not a whole number of bytes; 2 is used" in warning.message
