"""The files every app of a pod shares: /etc/hostname, /etc/hosts, /etc/resolv.conf.

Written once per pod start into the pod's runtime directory and bound
read-only into each app, as the kubelet does (it manages these three files
for every container).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # compiling a plan needs the model; starting from one does not
    from podman_sd.manifest.model import Pod

HOST_RESOLV_CONF = Path("/etc/resolv.conf")


def hosts_file(pod: Pod, hostname: str) -> str:
    lines = [
        "# Managed by podman-sd.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    fqdn = hostname
    if pod.spec.subdomain:
        fqdn = f"{hostname}.{pod.spec.subdomain}.{pod.namespace}.svc.cluster.local"
    names = f"{fqdn}\t{hostname}" if fqdn != hostname else hostname
    lines.append(f"127.0.1.1\t{names}")
    if pod.spec.host_aliases:
        lines.append("# Entries added by HostAliases.")
        lines.extend("\t".join((alias.ip, *alias.hostnames)) for alias in pod.spec.host_aliases)
    return "\n".join(lines) + "\n"


def _host_resolv_conf() -> tuple[list[str], list[str], list[str]]:

    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        text = HOST_RESOLV_CONF.read_text()
    except OSError:
        return servers, searches, options
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return servers, searches, options


def resolv_conf(pod: Pod) -> str:
    """dnsPolicy on one host: there is no cluster DNS, so ClusterFirst and
    Default both start from the host's resolv.conf; None starts empty. Then
    dnsConfig is merged in (nameservers and searches appended, options
    overriding by name), as the kubelet merges it."""
    from podman_sd.manifest.model import DNSPolicy

    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if pod.spec.dns_policy is not DNSPolicy.NONE:
        servers, searches, options = _host_resolv_conf()
    config = pod.spec.dns_config
    if config is not None:
        servers = [*servers, *(s for s in config.nameservers if s not in servers)]
        searches = [*searches, *(s for s in config.searches if s not in searches)]
        by_name = {opt.split(":")[0]: opt for opt in options}
        for opt in config.options:
            by_name[opt.name] = opt.name if opt.value is None else f"{opt.name}:{opt.value}"
        options = list(by_name.values())
    lines = ["# Managed by podman-sd."]
    lines.extend(f"nameserver {s}" for s in servers[:3])
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def pod_files(pod: Pod, hostname: str) -> dict[str, str]:
    """{path in the app: content} of the files the kubelet manages."""
    return {
        "/etc/hostname": f"{hostname}\n",
        "/etc/hosts": hosts_file(pod, hostname),
        "/etc/resolv.conf": resolv_conf(pod),
    }


def write_pod_files(contents: dict[str, str], directory: Path) -> dict[str, Path]:
    """Write the files; returns {path in the app: file on the host}."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for target, text in contents.items():
        source = directory / target.rsplit("/", 1)[1]
        source.write_text(text)
        source.chmod(0o644)
        files[target] = source
    return files
