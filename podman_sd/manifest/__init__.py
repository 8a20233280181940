"""Pod manifests: Kubernetes ``v1`` Pod YAML read into frozen dataclasses.

    from podman_sd.manifest import load_pod
    pod = load_pod(Path("/etc/podman-sd/pods/web.yaml"))

``load_pod`` and ``parse_pod`` raise ``ManifestError`` (one-line ``str()``,
every finding in ``.diagnostics``). ``host_checks`` adds what depends on the
machine (hostPath types, host ports, CPU and memory).
"""

from __future__ import annotations

from podman_sd.manifest.diagnostics import Diagnostic, Severity
from podman_sd.manifest.hostcheck import host_checks
from podman_sd.manifest.model import (
    Capabilities,
    Container,
    ContainerPort,
    DNSConfigOption,
    DNSPolicy,
    EmptyDirVolumeSource,
    EnvVar,
    ExecAction,
    FieldPath,
    FieldRef,
    HostAlias,
    HostPathType,
    HostPathVolumeSource,
    HTTPGetAction,
    HTTPHeader,
    Lifecycle,
    LifecycleHandler,
    Pod,
    PodDNSConfig,
    PodSecurityContext,
    PodSpec,
    Probe,
    Protocol,
    PullPolicy,
    ResourceList,
    ResourceRequirements,
    RestartPolicy,
    SecurityContext,
    StorageMedium,
    Sysctl,
    TCPSocketAction,
    UnitOptions,
    URIScheme,
    Volume,
    VolumeMount,
)
from podman_sd.manifest.parse import check_pod, load_pod, parse_pod
from podman_sd.manifest.quantity import Quantity, QuantityError, parse_quantity

__all__ = [
    "Capabilities",
    "Container",
    "ContainerPort",
    "DNSConfigOption",
    "DNSPolicy",
    "Diagnostic",
    "EmptyDirVolumeSource",
    "EnvVar",
    "ExecAction",
    "FieldPath",
    "FieldRef",
    "HTTPGetAction",
    "HTTPHeader",
    "HostAlias",
    "HostPathType",
    "HostPathVolumeSource",
    "Lifecycle",
    "LifecycleHandler",
    "Pod",
    "PodDNSConfig",
    "PodSecurityContext",
    "PodSpec",
    "Probe",
    "Protocol",
    "PullPolicy",
    "Quantity",
    "QuantityError",
    "ResourceList",
    "ResourceRequirements",
    "RestartPolicy",
    "SecurityContext",
    "Severity",
    "StorageMedium",
    "Sysctl",
    "TCPSocketAction",
    "URIScheme",
    "UnitOptions",
    "Volume",
    "VolumeMount",
    "check_pod",
    "host_checks",
    "load_pod",
    "parse_pod",
    "parse_quantity",
]
