"""The pod model: the supported subset of Kubernetes ``v1`` ``Pod``.

Everything past the parser sees these frozen dataclasses and enums, never
raw YAML. Field names are the Kubernetes ones in snake_case; defaults are
the ones the API server fills in, so a consumer never has to know them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from podman_sd.manifest.diagnostics import Diagnostic
from podman_sd.manifest.quantity import Quantity


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


def _no_positions() -> Mapping[str, tuple[int, int]]:
    return MappingProxyType({})


class RestartPolicy(enum.Enum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


class PullPolicy(enum.Enum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Protocol(enum.Enum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class TerminationMessagePolicy(enum.Enum):
    FILE = "File"
    # The end of the app's output, when it failed and left no message.
    FALLBACK_TO_LOGS_ON_ERROR = "FallbackToLogsOnError"


class HostPathType(enum.Enum):
    UNSET = ""  # no check at all, the Kubernetes default
    DIRECTORY_OR_CREATE = "DirectoryOrCreate"  # created 0755 if missing
    DIRECTORY = "Directory"
    FILE_OR_CREATE = "FileOrCreate"  # created 0644 if missing (parent must exist)
    FILE = "File"
    SOCKET = "Socket"
    CHAR_DEVICE = "CharDevice"
    BLOCK_DEVICE = "BlockDevice"


class StorageMedium(enum.Enum):
    DEFAULT = ""  # the disk under /var/lib/podman-sd
    MEMORY = "Memory"  # a tmpfs


class DNSPolicy(enum.Enum):
    CLUSTER_FIRST = "ClusterFirst"  # no cluster DNS here: same as Default
    CLUSTER_FIRST_WITH_HOST_NET = "ClusterFirstWithHostNet"
    DEFAULT = "Default"  # the host's resolv.conf
    NONE = "None"  # only spec.dnsConfig


class URIScheme(enum.Enum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"


class FieldPath(enum.Enum):
    """The downward-API fields an env var can take (``valueFrom.fieldRef``)."""

    NAME = "metadata.name"
    NAMESPACE = "metadata.namespace"
    LABEL = "metadata.labels"  # with FieldRef.key
    POD_IP = "status.podIP"


@dataclass(frozen=True)
class ResourceList:
    cpu: Quantity | None = None  # cores
    memory: Quantity | None = None  # bytes
    ephemeral_storage: Quantity | None = None  # bytes


@dataclass(frozen=True)
class ResourceRequirements:
    limits: ResourceList = ResourceList()
    requests: ResourceList = ResourceList()


@dataclass(frozen=True)
class FieldRef:
    field_path: FieldPath
    key: str | None = None  # the label name for metadata.labels['KEY']
    api_version: str = "v1"


@dataclass(frozen=True)
class EnvVar:
    """``value`` may hold ``$(OTHER)`` references; the launcher expands them
    in order, like the kubelet. Exactly one of value / value_from is set,
    or neither (an empty variable)."""

    name: str
    value: str | None = None
    value_from: FieldRef | None = None


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    host_port: int | None = None
    protocol: Protocol = Protocol.TCP
    name: str | None = None


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str  # absolute
    read_only: bool = False
    sub_path: str | None = None  # relative, no ".."


@dataclass(frozen=True)
class Capabilities:
    add: tuple[str, ...] = ()  # as written, e.g. "NET_ADMIN" (no CAP_ prefix)
    drop: tuple[str, ...] = ()  # may hold "ALL"


@dataclass(frozen=True)
class SecurityContext:
    """A container's securityContext. None means "not set": the pod's
    securityContext (for run_as_*) or the runtime default applies."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    privileged: bool | None = None
    capabilities: Capabilities | None = None


@dataclass(frozen=True)
class Sysctl:
    name: str
    value: str


@dataclass(frozen=True)
class PodSecurityContext:
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    fs_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    sysctls: tuple[Sysctl, ...] = ()


@dataclass(frozen=True)
class ExecAction:
    command: tuple[str, ...]  # run directly, not through a shell


@dataclass(frozen=True)
class HTTPHeader:
    name: str
    value: str


@dataclass(frozen=True)
class HTTPGetAction:
    port: int | str  # a number or the name of one of the container's ports
    path: str = "/"
    host: str | None = None  # None: the pod's IP
    scheme: URIScheme = URIScheme.HTTP
    http_headers: tuple[HTTPHeader, ...] = ()


@dataclass(frozen=True)
class TCPSocketAction:
    port: int | str
    host: str | None = None


@dataclass(frozen=True)
class Probe:
    """Exactly one of exec / http_get / tcp_socket is set."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    initial_delay_seconds: int = 0
    timeout_seconds: int = 1
    period_seconds: int = 10
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_seconds: int | None = None


@dataclass(frozen=True)
class LifecycleHandler:
    exec: ExecAction


@dataclass(frozen=True)
class Lifecycle:
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str  # as written: "docker.io/library/busybox:1.36", "oci:/path:tag", ...
    image_pull_policy: PullPolicy
    command: tuple[str, ...] | None = None  # None: the image's entrypoint
    args: tuple[str, ...] | None = None  # None: the image's cmd
    env: tuple[EnvVar, ...] = ()
    working_dir: str | None = None
    ports: tuple[ContainerPort, ...] = ()
    volume_mounts: tuple[VolumeMount, ...] = ()
    resources: ResourceRequirements = ResourceRequirements()
    security_context: SecurityContext = SecurityContext()
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle = Lifecycle()
    stdin: bool = False
    tty: bool = False
    termination_message_path: str = "/dev/termination-log"
    termination_message_policy: TerminationMessagePolicy = TerminationMessagePolicy.FILE


@dataclass(frozen=True)
class HostPathVolumeSource:
    path: str  # absolute
    type: HostPathType = HostPathType.UNSET


@dataclass(frozen=True)
class EmptyDirVolumeSource:
    medium: StorageMedium = StorageMedium.DEFAULT
    size_limit: Quantity | None = None


@dataclass(frozen=True)
class Volume:
    """Exactly one of host_path / empty_dir is set."""

    name: str
    host_path: HostPathVolumeSource | None = None
    empty_dir: EmptyDirVolumeSource | None = None


@dataclass(frozen=True)
class HostAlias:
    ip: str
    hostnames: tuple[str, ...] = ()


@dataclass(frozen=True)
class DNSConfigOption:
    name: str
    value: str | None = None


@dataclass(frozen=True)
class PodDNSConfig:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[DNSConfigOption, ...] = ()


@dataclass(frozen=True)
class PodSpec:
    containers: tuple[Container, ...]
    init_containers: tuple[Container, ...] = ()
    volumes: tuple[Volume, ...] = ()
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    termination_grace_period_seconds: int = 30
    active_deadline_seconds: int | None = None
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    share_process_namespace: bool = False
    hostname: str | None = None  # None: the pod name
    subdomain: str | None = None
    host_aliases: tuple[HostAlias, ...] = ()
    dns_policy: DNSPolicy = DNSPolicy.CLUSTER_FIRST
    dns_config: PodDNSConfig | None = None
    security_context: PodSecurityContext = PodSecurityContext()
    resources: ResourceRequirements | None = None  # pod-level cpu and memory

    def all_containers(self) -> tuple[Container, ...]:
        return self.init_containers + self.containers

    def volume(self, name: str) -> Volume:
        return next(v for v in self.volumes if v.name == name)


@dataclass(frozen=True)
class UnitOptions:
    """systemd settings from ``podman-sd.io/`` annotations (see generator.py
    and runtime/limits.py)."""

    description: str | None = None  # podman-sd.io/description
    after: tuple[str, ...] = ()  # podman-sd.io/after: pods to order after and want
    requires: tuple[str, ...] = ()  # podman-sd.io/requires: pods to order after and require
    wanted_by: tuple[str, ...] = ()  # podman-sd.io/wanted-by: units (multi-user.target)
    required_by: tuple[str, ...] = ()  # podman-sd.io/required-by
    restart_sec: int | None = None  # podman-sd.io/restart-sec
    pids_limit: int | None = None  # podman-sd.io/pids-limit: TasksMax= of the pod's slice


@dataclass(frozen=True)
class Pod:
    name: str
    spec: PodSpec
    source: Path
    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=_empty)
    annotations: Mapping[str, str] = field(default_factory=_empty)
    unit: UnitOptions = UnitOptions()
    warnings: tuple[Diagnostic, ...] = ()
    # Where each field was written: "spec.volumes[0].hostPath.path" -> (line,
    # column). Lets checks made later (host_checks) point into the file.
    positions: Mapping[str, tuple[int, int]] = field(
        default_factory=_no_positions, compare=False, repr=False
    )
