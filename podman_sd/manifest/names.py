"""Name and value syntax the Kubernetes API server checks (apimachinery
validation), plus image references as podman users write them.

Each check returns None when the value is fine, else the reason, worded to
follow the quoted value: ``"My_App" is not a DNS label (...)``.
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SVC_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_HTTP_HEADER = re.compile(r"[-A-Za-z0-9!#$%&'*+.^_`|~]+")
_SYSCTL = re.compile(r"([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?")
_UNIT = re.compile(
    r"[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]+)?"
    r"\.(service|socket|target|device|mount|automount|swap|path|timer|slice|scope)"
)

# distribution/reference grammar (docker.io/library/busybox:1.36@sha256:...).
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_PART}(?:/{_PATH_PART})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
_LOCAL_TRANSPORTS = ("oci:", "oci-archive:")
IMAGE_EXAMPLES = "examples: docker.io/library/busybox:1.36, oci:/var/lib/images/app:1.0"

# Capabilities the kernel knows (linux/capability.h), without the CAP_ prefix.
CAPABILITIES = frozenset(
    [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
        "ALL",
    ]
)

# Sysctls that the kernel scopes to a network or IPC namespace; any other
# would change the whole host (the kubelet refuses them the same way).
_NAMESPACED_SYSCTL = re.compile(r"(net\.|kernel\.(shm|msg|sem)|fs\.mqueue\.)")


def dns_label(value: str) -> str | None:
    if len(value) > 63:
        return "is longer than 63 characters, the limit of a DNS label"
    if not _LABEL.fullmatch(value):
        return (
            "is not a DNS label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def dns_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return "is longer than 253 characters"
    if not all(_LABEL.fullmatch(part) for part in value.split(".")):
        return "is not a DNS name (lower-case DNS labels joined by '.')"
    return None


def port_name(value: str) -> str | None:
    """IANA_SVC_NAME: 1-15 of [a-z0-9-], at least one letter, no '--'."""
    if (
        len(value) > 15
        or not _SVC_NAME.fullmatch(value)
        or "--" in value
        or not any(c.isalpha() for c in value)
    ):
        return (
            "is not a port name (at most 15 lower-case letters, digits and '-', "
            "with at least one letter, e.g. http)"
        )
    return None


def qualified_name(value: str) -> str | None:
    """A label or annotation key: optional DNS-subdomain prefix, '/', name."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or dns_subdomain(prefix)):
        return "has a prefix that is not a DNS name (e.g. example.com/name)"
    if len(name) > 63 or not _QUALIFIED.fullmatch(name):
        return (
            "is not a valid key (at most 63 letters, digits, '-', '_' and '.', "
            "with an optional DNS prefix and '/')"
        )
    return None


def label_value(value: str) -> str | None:
    if value and (len(value) > 63 or not _QUALIFIED.fullmatch(value)):
        return "is not a label value (at most 63 letters, digits, '-', '_' and '.')"
    return None


def env_name(value: str) -> str | None:
    if not _ENV_NAME.fullmatch(value):
        return "is not an environment variable name (letters, digits, '_', '-' and '.')"
    return None


def http_header(value: str) -> str | None:
    if not _HTTP_HEADER.fullmatch(value):
        return "is not an HTTP header name"
    return None


def sysctl_name(value: str, host_network: bool) -> str | None:
    if len(value) > 253 or not _SYSCTL.fullmatch(value):
        return "is not a sysctl name (e.g. net.ipv4.ip_unprivileged_port_start)"
    if not _NAMESPACED_SYSCTL.match(value):
        return "is not namespaced: setting it would change the whole host"
    if host_network and value.startswith("net."):
        return "would change the host's network settings (the pod uses hostNetwork)"
    return None


def unit_name(value: str) -> str | None:
    if len(value) > 255 or not _UNIT.fullmatch(value) or value.endswith("@.service"):
        return "is not a systemd unit name (e.g. multi-user.target)"
    return None


def image_reference(value: str) -> str | None:
    if value != value.strip():
        return "has leading or trailing whitespace"
    for transport in _LOCAL_TRANSPORTS:
        if value.startswith(transport):
            path = value[len(transport) :]
            if not path.startswith("/"):
                return f"needs an absolute path after {transport} ({IMAGE_EXAMPLES})"
            return None
    ref = value.removeprefix("docker://")
    if len(ref) > 255 or not _REFERENCE.fullmatch(ref):
        return f"is not an image reference ({IMAGE_EXAMPLES})"
    return None


def image_tag(value: str) -> tuple[str | None, bool]:
    """The tag of an image reference and whether it has a digest.

    Kubernetes defaults imagePullPolicy to Always when the tag is "latest" or
    missing (which means latest), and to IfNotPresent otherwise, including
    for a digest without a tag.
    """
    for transport in _LOCAL_TRANSPORTS:
        if value.startswith(transport):
            path = value[len(transport) :]
            _head, colon, tag = path.rpartition(":")
            return (tag if colon and "/" not in tag else None), False
    m = _REFERENCE.fullmatch(value.removeprefix("docker://"))
    if m is None:
        return None, False
    return m["tag"], m["digest"] is not None
