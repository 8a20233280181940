"""Manifest text -> ``Pod``: the supported subset of Kubernetes ``v1`` Pod,
checked the way the API server checks it, with every error of the file
reported at its line and column.

The container-level parts live in ``containers.py``; this module holds the
pod, its metadata, volumes and the entry points.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType

from podman_sd import names as units
from podman_sd.errors import ManifestError
from podman_sd.manifest.containers import parse_container, parse_resources
from podman_sd.manifest.diagnostics import Diagnostic, Severity, one_line, show
from podman_sd.manifest.model import (
    Container,
    DNSConfigOption,
    DNSPolicy,
    EmptyDirVolumeSource,
    HostAlias,
    HostPathType,
    HostPathVolumeSource,
    Pod,
    PodDNSConfig,
    PodSecurityContext,
    PodSpec,
    RestartPolicy,
    StorageMedium,
    Sysctl,
    Volume,
)
from podman_sd.manifest.names import (
    dns_label,
    dns_subdomain,
    label_value,
    qualified_name,
    sysctl_name,
)
from podman_sd.manifest.reader import (
    INT32_MAX,
    INT64_MAX,
    Context,
    Fields,
    as_int,
    as_str,
    parse_quantity_node,
)
from podman_sd.manifest.unitopts import parse_unit_options
from podman_sd.manifest.yamlnode import MAX_BYTES, Kind, Node, compose

SCHEDULING = "cluster scheduling has no meaning on a single host"
IGNORED_SPEC = {
    "nodeName": SCHEDULING,
    "nodeSelector": SCHEDULING,
    "affinity": SCHEDULING,
    "tolerations": SCHEDULING,
    "schedulingGates": SCHEDULING,
    "topologySpreadConstraints": SCHEDULING,
    "priorityClassName": SCHEDULING,
    "schedulerName": SCHEDULING,
    "serviceAccountName": "there is no API server to give the pod a service account",
    "serviceAccount": "there is no API server to give the pod a service account",
    "automountServiceAccountToken": "there is no API server token to mount",
}
UNSUPPORTED_SPEC = frozenset(
    [
        "dnsConfig",
        "enableServiceLinks",
        "ephemeralContainers",
        "evictionResponders",
        "hostUsers",
        "hostnameOverride",
        "imagePullSecrets",
        "os",
        "overhead",
        "preemptionPolicy",
        "priority",
        "readinessGates",
        "resourceClaims",
        "runtimeClassName",
        "schedulingGroup",
        "setHostnameAsFQDN",
    ]
) - {"dnsConfig"}
# Not ignored (DESIGN.md: only scheduling fields are): the pod would pull
# with other credentials than those it names.
SPEC_HINTS = {
    "imagePullSecrets": "put registry credentials in /etc/podman-sd/auth.json",
}
UNSUPPORTED_VOLUMES = frozenset(
    [
        "awsElasticBlockStore",
        "azureDisk",
        "azureFile",
        "cephfs",
        "cinder",
        "configMap",
        "csi",
        "downwardAPI",
        "ephemeral",
        "fc",
        "flexVolume",
        "flocker",
        "gcePersistentDisk",
        "gitRepo",
        "glusterfs",
        "image",
        "iscsi",
        "nfs",
        "persistentVolumeClaim",
        "photonPersistentDisk",
        "portworxVolume",
        "projected",
        "quobyte",
        "rbd",
        "scaleIO",
        "secret",
        "storageos",
        "vsphereVolume",
    ]
)
VOLUME_HINT = "use a hostPath or emptyDir volume"
# Set by the API server; kubectl's output carries them. Harmless, so ignored.
READ_ONLY_META = {
    k: "set by the Kubernetes API server"
    for k in [
        "creationTimestamp",
        "deletionGracePeriodSeconds",
        "deletionTimestamp",
        "generation",
        "managedFields",
        "resourceVersion",
        "selfLink",
        "uid",
    ]
}
UNSUPPORTED_META = frozenset({"generateName", "finalizers", "ownerReferences"})
UNSUPPORTED_POD_SC = frozenset(
    [
        "appArmorProfile",
        "fsGroupChangePolicy",
        "seLinuxChangePolicy",
        "seLinuxOptions",
        "seccompProfile",
        "supplementalGroupsPolicy",
        "windowsOptions",
    ]
)
MAX_ANNOTATIONS = 256 * 1024  # total bytes, as the API server limits them
UNIT_NAME_MAX = 255  # systemd's UNIT_NAME_MAX (256) counts the final NUL
ESCAPING = "(each '-' of a name is escaped to the 4 characters \\x2d; use a shorter name)"


def parse_pod(text: str | bytes, filename: str) -> Pod:
    """Parse a manifest; raise ManifestError with every diagnostic otherwise.

    ``filename`` names the file in messages; its stem is the pod name.
    """
    pod, diagnostics = check_pod(text, filename)
    if pod is None:
        raise _manifest_error(diagnostics)
    return pod


def load_pod(path: Path) -> Pod:
    """Read and parse ``path`` (at most 1 MiB)."""
    return parse_pod(read_manifest(path), str(path))


def read_manifest(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise _manifest_error(
            [Diagnostic(str(path), 0, 0, "", f"cannot read: {e.strerror or e}")]
        ) from None
    return data


def check_pod(text: str | bytes, filename: str) -> tuple[Pod | None, list[Diagnostic]]:
    """Parse a manifest and return (pod or None, every diagnostic).

    The pod is None exactly when there is an error; warnings come with a pod.
    One warning depends on this host: a limit above its CPUs or memory
    (hostcheck.over_capacity), so that validate and the launcher, which
    prints a pod's warnings, both show it; it never makes an error.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    root, diagnostics = compose(data, filename)
    if root is not None and root.kind is Kind.SCALAR and root.value is None:
        root = None  # "---", "null", "~" or only a document marker: nothing in it
    if root is None:
        if not diagnostics:
            message = "the manifest is empty (expected a Pod)"
            diagnostics.append(Diagnostic(filename, 1, 1, "", message))
        return None, diagnostics
    ctx = Context(filename)
    ctx.diagnostics = diagnostics
    pod = _PodParser(ctx, filename).pod(root)
    ctx.diagnostics.sort(key=lambda d: (d.line, d.column))
    if ctx.has_errors() or pod is None:
        return None, ctx.diagnostics
    return pod, ctx.diagnostics


def _manifest_error(diagnostics: list[Diagnostic]) -> ManifestError:
    error = ManifestError(one_line(diagnostics))
    error.diagnostics = diagnostics  # type: ignore[attr-defined]
    return error


def _stem(filename: str) -> str:
    base = os.path.basename(filename)
    return base[: -len(".yaml")] if base.endswith(".yaml") else os.path.splitext(base)[0]


def _option_word(also_refused: str) -> Callable[[str], str | None]:
    def check(word: str) -> str | None:
        if word and not any(c.isspace() or c in also_refused for c in word):
            return None
        refused = "spaces, line breaks" + (f" or {also_refused!r}" if also_refused else "")
        return f"is not one resolv.conf option word (no {refused})"

    return check


class _PodParser:
    def __init__(self, ctx: Context, filename: str) -> None:
        self.ctx = ctx
        self.filename = filename

    def pod(self, root: Node) -> Pod | None:
        ctx = self.ctx
        top = Fields.of(ctx, root, "")
        if top is None:
            return None
        api = top.text("apiVersion", required=True)
        kind = top.text("kind", required=True)
        if api is not None and api != "v1":
            ctx.error(top.get("apiVersion") or root, "apiVersion", f'{show(api)} is not "v1"')
        if kind is not None and kind != "Pod":
            ctx.error(
                top.get("kind") or root,
                "kind",
                f"{show(kind)} is not supported: a manifest holds one Pod (kind: Pod)",
            )
        if ctx.has_errors():
            return None  # another kind of object: its fields would only add noise

        meta = top.fields("metadata") or Fields(ctx, Node(Kind.MAP, 1, 1, {}), "metadata")
        name = self.name(meta)
        namespace = meta.text("namespace", check=dns_label) or "default"
        labels = self.string_map(meta, "labels", label_values=True)
        annotations = self.string_map(meta, "annotations", label_values=False)
        size = sum(len(k) + len(v) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS:
            ctx.error(
                meta.get("annotations") or root,
                "metadata.annotations",
                f"{size} bytes is more than the limit of {MAX_ANNOTATIONS}",
            )
        meta.finish(UNSUPPORTED_META, READ_ONLY_META)
        unit = parse_unit_options(ctx, meta, annotations, name)

        spec_fields = top.fields("spec", required=True)
        status = top.get("status")
        if status is not None and not (status.kind is Kind.MAP and not status.value):
            ctx.warn(top.key_node("status"), "status", "ignored: set by the Kubernetes API server")
        top.finish()
        spec = self.spec(spec_fields) if spec_fields is not None else None
        if name is not None and spec_fields is not None:
            self.unit_name_lengths(name, meta, spec_fields)
        if spec is None or name is None or ctx.has_errors():
            return None
        warnings = tuple(
            sorted(
                (d for d in ctx.diagnostics if d.severity is Severity.WARNING),
                key=lambda d: (d.line, d.column),
            )
        )
        return Pod(
            name=name,
            namespace=namespace,
            labels=labels,
            annotations=annotations,
            spec=spec,
            source=Path(self.filename),
            unit=unit,
            warnings=warnings,
            positions=MappingProxyType(ctx.positions),
        )

    def name(self, meta: Fields) -> str | None:
        stem = _stem(self.filename)
        name = meta.text("name", check=dns_label)
        node = meta.get("name")
        if name is None and node is not None:
            return None  # already reported
        if name is not None and node is not None:
            if name != stem:
                self.ctx.error(
                    node,
                    "metadata.name",
                    f"{show(name)} differs from the file name {show(os.path.basename(self.filename))}"
                    f" (name the file {name}.yaml, or drop metadata.name)",
                )
                return None
            return name
        problem = dns_label(stem)
        if problem:
            self.ctx.error(
                meta.node,
                "metadata.name",
                f"the file name gives the pod name {show(stem)}, which {problem}",
            )
            return None
        return stem

    def string_map(self, parent: Fields, key: str, label_values: bool) -> dict[str, str]:
        ctx = self.ctx
        fields = parent.fields(key)
        result: dict[str, str] = {}
        if fields is None:
            return result
        for k, (key_node, value_node) in fields.node.value.items():
            path = f"{fields.path}[{k}]"
            problem = qualified_name(k)
            if problem:
                ctx.error(key_node, path, f"{show(k)} {problem}")
                continue
            value = as_str(ctx, value_node, path)
            if value is None:
                continue
            if label_values and (problem := label_value(value)):
                ctx.error(value_node, path, f"{show(value)} {problem}")
                continue
            result[k] = value
        return result

    def spec(self, f: Fields) -> PodSpec | None:
        ctx = self.ctx
        host_network = f.flag("hostNetwork") or False
        host_pid = f.flag("hostPID") or False
        host_ipc = f.flag("hostIPC") or False
        share_pid = f.flag("shareProcessNamespace") or False
        if host_pid and share_pid:
            ctx.error(
                f.get("shareProcessNamespace") or f.node,
                f.sub("shareProcessNamespace"),
                "true cannot be combined with hostPID: true",
            )
        volume_names: set[str] = set()
        volumes = tuple(
            v for v in (self.volume(n, p, volume_names) for n, p in f.seq("volumes")) if v
        )
        containers: list[Container] = []
        init_containers: list[Container] = []
        for key, out, init in (
            ("initContainers", init_containers, True),
            ("containers", containers, False),
        ):
            for node, path in f.seq(key, required=not init):
                c = parse_container(ctx, node, path, volume_names, host_network, init)
                if c is not None:
                    out.append(c)
        listed = f.get("containers")
        if listed is not None and listed.kind is Kind.SEQ and not listed.value:
            ctx.error(listed, f.sub("containers"), "needs at least one container")
        self.unique_names(f)
        self.unique_host_ports(f)

        restart = f.choice("restartPolicy", RestartPolicy) or RestartPolicy.ALWAYS
        grace = f.integer("terminationGracePeriodSeconds", 0, INT32_MAX)
        deadline = f.integer("activeDeadlineSeconds", 1, INT64_MAX)
        hostname = f.text("hostname", check=dns_label)
        subdomain = f.text("subdomain", check=dns_label)
        aliases = tuple(a for a in (self.host_alias(n, p) for n, p in f.seq("hostAliases")) if a)
        dns_policy = f.choice("dnsPolicy", DNSPolicy) or DNSPolicy.CLUSTER_FIRST
        dns_config = self.dns_config(f, dns_policy)
        security = self.security_context(f, host_network)
        resources = None
        res_fields = f.fields("resources")
        if res_fields is not None:
            resources = parse_resources(ctx, res_fields, pod_level=True)
        f.finish(UNSUPPORTED_SPEC, IGNORED_SPEC, SPEC_HINTS)
        if ctx.has_errors():
            return None
        return PodSpec(
            containers=tuple(containers),
            init_containers=tuple(init_containers),
            volumes=volumes,
            restart_policy=restart,
            termination_grace_period_seconds=30 if grace is None else grace,
            active_deadline_seconds=deadline,
            host_network=host_network,
            host_pid=host_pid,
            host_ipc=host_ipc,
            share_process_namespace=share_pid,
            hostname=hostname,
            subdomain=subdomain,
            host_aliases=aliases,
            dns_policy=dns_policy,
            dns_config=dns_config,
            security_context=security,
            resources=resources,
        )

    @staticmethod
    def container_names(spec: Fields) -> Iterator[tuple[str, Node]]:
        """(field path, node) of every container name given as a string."""
        for key in ("initContainers", "containers"):
            node = spec.node.value.get(key)
            if node is None or node[1].kind is not Kind.SEQ:
                continue
            for i, c in enumerate(node[1].value):
                pair = c.value.get("name") if c.kind is Kind.MAP else None
                if pair is not None and isinstance(pair[1].value, str):
                    yield f"spec.{key}[{i}].name", pair[1]

    def unique_names(self, spec: Fields) -> None:
        seen: dict[str, int] = {}
        for path, node in self.container_names(spec):
            name = node.value
            if name in seen:
                self.ctx.error(
                    node,
                    path,
                    f"{show(name)} is a duplicate: container names must be "
                    f"unique in the pod (first at line {seen[name]})",
                )
            else:
                seen[name] = node.line

    def unit_name_lengths(self, pod: str, meta: Fields, spec: Fields) -> None:
        """Each app runs in a scope named after the pod and the app, in the
        pod's slice; a name systemd refuses would fail only at start."""
        slice_length = len(units.pod_slice(pod))
        if slice_length > UNIT_NAME_MAX:
            self.ctx.error(
                meta.get("name") or meta.node,
                "metadata.name",
                f"the pod's slice unit name would be {slice_length} characters, "
                f"over systemd's {UNIT_NAME_MAX} {ESCAPING}",
            )
            return  # every scope name is longer still
        for path, node in self.container_names(spec):
            if dns_label(node.value):
                continue  # not a name: already reported
            length = len(units.app_scope(pod, node.value))
            if length > UNIT_NAME_MAX:
                self.ctx.error(
                    node,
                    path,
                    f"the scope unit name of this app in this pod would be {length} "
                    f"characters, over systemd's {UNIT_NAME_MAX} {ESCAPING}",
                )

    def unique_host_ports(self, spec: Fields) -> None:
        # The API server rejects the same hostPort/protocol twice in one pod.
        seen: dict[tuple[int, str], int] = {}
        for key in ("initContainers", "containers"):
            node = spec.node.value.get(key)
            if node is None or node[1].kind is not Kind.SEQ:
                continue
            for i, c in enumerate(node[1].value):
                ports = c.value.get("ports") if c.kind is Kind.MAP else None
                if ports is None or ports[1].kind is not Kind.SEQ:
                    continue
                for j, p in enumerate(ports[1].value):
                    if p.kind is not Kind.MAP or "hostPort" not in p.value:
                        continue
                    hp = p.value["hostPort"][1]
                    proto = p.value.get("protocol", (None, Node(Kind.SCALAR, 0, 0, "TCP")))[1]
                    if not isinstance(hp.value, int) or isinstance(hp.value, bool) or not hp.value:
                        continue
                    k = (hp.value, str(proto.value))
                    if k in seen:
                        self.ctx.error(
                            hp,
                            f"spec.{key}[{i}].ports[{j}].hostPort",
                            f"{hp.value}/{k[1]} is a duplicate: host ports must be "
                            f"unique in the pod (first at line {seen[k]})",
                        )
                    else:
                        seen[k] = hp.line

    def volume(self, node: Node, path: str, names: set[str]) -> Volume | None:
        ctx = self.ctx
        f = Fields.of(ctx, node, path)
        if f is None:
            return None
        name = f.text("name", required=True, check=dns_label)
        f.unique("name", name, names, "volume names must be unique")
        sources = [
            k
            for k, (_, v) in f.node.value.items()
            if k != "name" and not (v.kind is Kind.SCALAR and v.value is None)
        ]
        host_path = empty_dir = None
        hp = f.fields("hostPath")
        if hp is not None:
            host_path = self.host_path(hp)
        ed = f.fields("emptyDir")
        if ed is not None:
            empty_dir = self.empty_dir(ed)
        # An unsupported source is reported by finish(), once.
        f.finish(UNSUPPORTED_VOLUMES, hints=dict.fromkeys(UNSUPPORTED_VOLUMES, VOLUME_HINT))
        if not sources:
            ctx.error(node, path, "needs a source: hostPath or emptyDir")
        elif "hostPath" in sources and "emptyDir" in sources:
            ctx.error(node, path, "has both hostPath and emptyDir; give exactly one")
        if name is None or (host_path is None and empty_dir is None):
            return None
        return Volume(name=name, host_path=host_path, empty_dir=empty_dir)

    def host_path(self, f: Fields) -> HostPathVolumeSource | None:
        path = f.text("path", required=True)
        if path is not None and (problem := _host_path_problem(path)):
            self.ctx.error(f.get("path") or f.node, f.sub("path"), f"{show(path)} {problem}")
            path = None
        node = f.get("type")
        kind = HostPathType.UNSET
        if node is not None and (text := as_str(self.ctx, node, f.sub("type"))) is not None:
            try:
                kind = HostPathType(text)
            except ValueError:
                accepted = ", ".join(t.value for t in HostPathType if t.value)
                self.ctx.error(node, f.sub("type"), f'{show(text)} is not "" or one of: {accepted}')
        f.finish()
        return None if path is None else HostPathVolumeSource(path=path, type=kind)

    def empty_dir(self, f: Fields) -> EmptyDirVolumeSource:
        medium = StorageMedium.DEFAULT
        node = f.get("medium")
        if node is not None and (text := as_str(self.ctx, node, f.sub("medium"))) is not None:
            if text == "HugePages" or text.startswith("HugePages-"):
                self.ctx.error(
                    node,
                    f.sub("medium"),
                    f'{show(text)} is not supported here (use "" for disk or "Memory" for a tmpfs)',
                )
            elif text not in ("", "Memory"):
                self.ctx.error(node, f.sub("medium"), f'{show(text)} is not "" or "Memory"')
            else:
                medium = StorageMedium(text)
        size_limit = None
        node = f.get("sizeLimit")
        if node is not None:
            size_limit = parse_quantity_node(self.ctx, node, f.sub("sizeLimit"))
        if node is not None and size_limit is not None and medium is StorageMedium.DEFAULT:
            # The kubelet enforces it by evicting the pod; here nothing would.
            self.ctx.warn(
                node,
                f.sub("sizeLimit"),
                "not enforced for an emptyDir on disk; use medium: Memory for a hard limit",
            )
        f.finish(frozenset({"mode"}))
        return EmptyDirVolumeSource(medium=medium, size_limit=size_limit)

    def host_alias(self, node: Node, path: str) -> HostAlias | None:
        f = Fields.of(self.ctx, node, path)
        if f is None:
            return None
        ip = f.text("ip", required=True, check=_ip_problem)
        hostnames = f.strs("hostnames") or ()
        for i, h in enumerate(hostnames):
            if problem := dns_subdomain(h.rstrip(".")):
                self.ctx.error(
                    f.get("hostnames") or node, f"{path}.hostnames[{i}]", f"{show(h)} {problem}"
                )
        f.finish()
        return None if ip is None else HostAlias(ip=ip, hostnames=hostnames)

    def dns_config(self, spec: Fields, policy: DNSPolicy) -> PodDNSConfig | None:
        ctx = self.ctx
        f = spec.fields("dnsConfig")
        if f is None:
            if policy is DNSPolicy.NONE:
                ctx.error(
                    spec.get("dnsPolicy") or spec.node,
                    spec.sub("dnsConfig"),
                    'is required when dnsPolicy is "None"',
                )
            return None
        nameservers = f.strs("nameservers") or ()
        for i, ns in enumerate(nameservers):
            if problem := _ip_problem(ns):
                ctx.error(
                    f.get("nameservers") or f.node,
                    f"{f.sub('nameservers')}[{i}]",
                    f"{show(ns)} {problem}",
                )
        if len(nameservers) > 3:
            ctx.error(
                f.get("nameservers") or f.node,
                f.sub("nameservers"),
                f"{len(nameservers)} nameservers are more than 3 (the resolver's limit)",
            )
        if policy is DNSPolicy.NONE and not nameservers:
            ctx.error(f.node, f.sub("nameservers"), 'needs at least one when dnsPolicy is "None"')
        searches = f.strs("searches") or ()
        for i, s in enumerate(searches):
            if problem := dns_subdomain(s.rstrip(".")):
                ctx.error(
                    f.get("searches") or f.node, f"{f.sub('searches')}[{i}]", f"{show(s)} {problem}"
                )
        if len(searches) > 32:
            ctx.error(
                f.get("searches") or f.node,
                f.sub("searches"),
                f"{len(searches)} search domains are more than 32",
            )
        options = []
        for node, path in f.seq("options"):
            of = Fields.of(ctx, node, path)
            if of is None:
                continue
            # One word each on resolv.conf's "options" line: a space or a
            # line break would add options, or whole lines, of its own.
            name = of.text("name", required=True, check=_option_word(":"))
            value = of.text("value", check=_option_word(""))
            of.finish()
            if name is not None:
                options.append(DNSConfigOption(name=name, value=value))
        f.finish()
        return PodDNSConfig(nameservers=nameservers, searches=searches, options=tuple(options))

    def security_context(self, spec: Fields, host_network: bool) -> PodSecurityContext:
        f = spec.fields("securityContext")
        if f is None:
            return PodSecurityContext()
        ctx = self.ctx
        groups = []
        for node, path in f.seq("supplementalGroups"):
            gid = as_int(ctx, node, path, 0, INT32_MAX)
            if gid is not None:
                groups.append(gid)
        sysctls = []
        for node, path in f.seq("sysctls"):
            sf = Fields.of(ctx, node, path)
            if sf is None:
                continue
            name = sf.text("name", required=True, check=lambda n: sysctl_name(n, host_network))
            value = sf.text("value", required=True)
            sf.finish()
            if name is not None and value is not None:
                sysctls.append(Sysctl(name=name, value=value))
        result = PodSecurityContext(
            run_as_user=f.integer("runAsUser"),
            run_as_group=f.integer("runAsGroup"),
            run_as_non_root=f.flag("runAsNonRoot"),
            fs_group=f.integer("fsGroup"),
            supplemental_groups=tuple(groups),
            sysctls=tuple(sysctls),
        )
        if result.run_as_non_root and result.run_as_user == 0:
            ctx.error(
                f.get("runAsUser") or f.node,
                f.sub("runAsUser"),
                "0 (root) contradicts runAsNonRoot: true",
            )
        f.finish(UNSUPPORTED_POD_SC)
        return result


def _host_path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return "is not an absolute path"
    if ".." in path.split("/"):
        return "must not contain '..'"
    if "\0" in path:
        return "contains a NUL character"
    return None


def _ip_problem(text: str) -> str | None:
    import ipaddress  # rarely needed; keeps the generator's start fast

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return "is not an IP address"
    return None


__all__ = ["check_pod", "load_pod", "parse_pod"]
