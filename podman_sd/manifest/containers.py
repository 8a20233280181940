"""The container part of a Pod: ``spec.containers[]`` and
``spec.initContainers[]`` with their env, ports, mounts, resources,
security context, probes and lifecycle hooks."""

from __future__ import annotations

from dataclasses import replace

from podman_sd.manifest.diagnostics import show
from podman_sd.manifest.hostcheck import over_capacity
from podman_sd.manifest.model import (
    Capabilities,
    Container,
    ContainerPort,
    EnvVar,
    ExecAction,
    FieldPath,
    FieldRef,
    HTTPGetAction,
    HTTPHeader,
    Lifecycle,
    LifecycleHandler,
    Probe,
    Protocol,
    PullPolicy,
    ResourceList,
    ResourceRequirements,
    SecurityContext,
    TCPSocketAction,
    TerminationMessagePolicy,
    URIScheme,
    VolumeMount,
)
from podman_sd.manifest.names import (
    CAPABILITIES,
    dns_label,
    env_name,
    http_header,
    image_reference,
    image_tag,
    port_name,
    qualified_name,
)
from podman_sd.manifest.quantity import Quantity
from podman_sd.manifest.reader import (
    Context,
    Fields,
    as_int,
    as_str,
    parse_quantity_node,
    suggest,
)
from podman_sd.manifest.yamlnode import Kind, Node

UNSUPPORTED_CONTAINER = frozenset(
    [
        "envFrom",
        "resizePolicy",
        "restartPolicy",
        "restartPolicyRules",
        "stdinOnce",
        "volumeDevices",
    ]
)
CONTAINER_HINTS = {
    "envFrom": "list the variables under env",
    "restartPolicy": "sidecar containers are not supported; use spec.restartPolicy",
}
UNSUPPORTED_ENV_SOURCE = frozenset(
    {"configMapKeyRef", "secretKeyRef", "resourceFieldRef", "fileKeyRef"}
)
ENV_SOURCE_HINTS = {
    "configMapKeyRef": "write the value under env[].value, or mount a hostPath file",
    "secretKeyRef": "write the value under env[].value, or mount a hostPath file",
    "fileKeyRef": "write the value under env[].value",
    "resourceFieldRef": "write the value under env[].value",
}
UNSUPPORTED_MOUNT = frozenset(
    {"bindMountOptions", "mountPropagation", "recursiveReadOnly", "subPathExpr"}
)
UNSUPPORTED_SC = frozenset(
    ["appArmorProfile", "procMount", "seLinuxOptions", "seccompProfile", "windowsOptions"]
)
UNSUPPORTED_PROBE = frozenset({"grpc"})
UNSUPPORTED_HANDLER = frozenset({"httpGet", "tcpSocket", "sleep"})
HANDLER_HINT = "use exec"
FIELD_PATHS = "metadata.name, metadata.namespace, metadata.labels['KEY'], status.podIP"
RESOURCES = {"cpu": "cpu", "memory": "memory", "ephemeral-storage": "ephemeral_storage"}


def parse_container(
    ctx: Context,
    node: Node,
    path: str,
    volume_names: set[str],
    host_network: bool,
    init: bool,
) -> Container | None:
    f = Fields.of(ctx, node, path)
    if f is None:
        return None
    name = f.text("name", required=True, check=dns_label)
    image = f.text("image", required=True, check=image_reference)
    pull = f.choice("imagePullPolicy", PullPolicy)
    if pull is None and image is not None:
        tag, digest = image_tag(image)
        latest = tag == "latest" or (tag is None and not digest)
        pull = PullPolicy.ALWAYS if latest else PullPolicy.IF_NOT_PRESENT
    # Kept as written. An empty command, args or workingDir counts as not
    # given (runtime/appspec.py, plan.py), as in the kubelet's runtimes.
    command = f.strs("command")
    args = f.strs("args")
    env = _env(ctx, f)
    working_dir = f.text("workingDir", check=_absolute_or_empty)
    ports = _ports(ctx, f, host_network)
    mounts = _mounts(ctx, f, volume_names)
    resources = ResourceRequirements()
    rf = f.fields("resources")
    if rf is not None:
        resources = parse_resources(ctx, rf, pod_level=False)
    security = _security_context(ctx, f)
    port_names = {p.name for p in ports if p.name}
    probes = {}
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        pf = f.fields(key)
        if pf is not None and init:
            ctx.error(pf.node, pf.path, "is not allowed for init containers")
        elif pf is not None:
            probes[key] = _probe(ctx, pf, port_names, key)
    lifecycle = Lifecycle()
    lf = f.fields("lifecycle")
    if lf is not None and init:
        ctx.error(lf.node, lf.path, "is not allowed for init containers")
    elif lf is not None:
        lifecycle = _lifecycle(ctx, lf)
    stdin = f.flag("stdin") or False
    tty = f.flag("tty") or False
    message_path = f.text("terminationMessagePath", check=_absolute_or_empty)
    message_policy = f.choice("terminationMessagePolicy", TerminationMessagePolicy)
    f.finish(UNSUPPORTED_CONTAINER, hints=CONTAINER_HINTS)
    if name is None or image is None or pull is None:
        return None
    return Container(
        name=name,
        image=image,
        image_pull_policy=pull,
        command=command,
        args=args,
        env=env,
        working_dir=working_dir,
        ports=ports,
        volume_mounts=mounts,
        resources=resources,
        security_context=security,
        liveness_probe=probes.get("livenessProbe"),
        readiness_probe=probes.get("readinessProbe"),
        startup_probe=probes.get("startupProbe"),
        lifecycle=lifecycle,
        stdin=stdin,
        tty=tty,
        termination_message_path=message_path or "/dev/termination-log",
        termination_message_policy=message_policy or TerminationMessagePolicy.FILE,
    )


def _absolute(value: str) -> str | None:
    return None if value.startswith("/") else "is not an absolute path"


def _absolute_or_empty(value: str) -> str | None:
    # "" is unset for Kubernetes: the image's WorkingDir, /dev/termination-log.
    return _absolute(value) if value else None


def _env(ctx: Context, f: Fields) -> tuple[EnvVar, ...]:
    result = []
    seen: dict[str, int] = {}
    for node, path in f.seq("env"):
        ef = Fields.of(ctx, node, path)
        if ef is None:
            continue
        name = ef.text("name", required=True, check=env_name)
        value = ef.text("value")
        value_from = None
        vf = ef.fields("valueFrom")
        if vf is not None:
            if value is not None:
                ctx.error(vf.node, vf.path, "cannot be combined with value")
            value_from = _value_from(ctx, vf)
        ef.finish()
        if name is None:
            continue
        if name in seen:
            ctx.warn(
                ef.get("name") or node,
                ef.sub("name"),
                f"{show(name)} is set again; this hides the value at line {seen[name]}",
            )
        seen[name] = node.line
        if vf is None or value_from is not None:
            result.append(EnvVar(name=name, value=value, value_from=value_from))
    return tuple(result)


def _value_from(ctx: Context, f: Fields) -> FieldRef | None:
    fr = f.fields("fieldRef")
    ref = None
    if fr is not None:
        version = fr.text("apiVersion")
        if version not in (None, "v1"):
            ctx.error(
                fr.get("apiVersion") or fr.node,
                fr.sub("apiVersion"),
                f'{show(version)} is not "v1"',
            )
        field_path = fr.text("fieldPath", required=True)
        if field_path is not None:
            ref = _field_ref(field_path)
            if ref is None:
                known = field_path.startswith(("spec.", "status.", "metadata."))
                why = "not supported on a single host" if known else "not a pod field"
                ctx.error(
                    fr.get("fieldPath") or fr.node,
                    fr.sub("fieldPath"),
                    f"{show(field_path)} is {why} (supported: {FIELD_PATHS})",
                )
        fr.finish()
    f.finish(UNSUPPORTED_ENV_SOURCE, hints=ENV_SOURCE_HINTS)
    if fr is None and not any(k in f.node.value for k in UNSUPPORTED_ENV_SOURCE):
        ctx.error(f.node, f.path, "needs a source: fieldRef")
    return ref


def _field_ref(text: str) -> FieldRef | None:
    if text.startswith("metadata.labels[") and text.endswith("]"):
        key = text[len("metadata.labels[") : -1]
        if len(key) >= 2 and key[0] == key[-1] and key[0] in "'\"":
            key = key[1:-1]
            if not qualified_name(key):
                return FieldRef(FieldPath.LABEL, key=key)
        return None
    try:
        path = FieldPath(text)
    except ValueError:
        return None
    return None if path is FieldPath.LABEL else FieldRef(path)


def _ports(ctx: Context, f: Fields, host_network: bool) -> tuple[ContainerPort, ...]:
    result = []
    names: set[str] = set()
    for node, path in f.seq("ports"):
        pf = Fields.of(ctx, node, path)
        if pf is None:
            continue
        port_node = pf.get("containerPort", required=True)
        port = (
            None if port_node is None else as_int(ctx, port_node, pf.sub("containerPort"), 1, 65535)
        )
        host_port = pf.integer("hostPort", 0, 65535) or None
        protocol = pf.choice("protocol", Protocol) or Protocol.TCP
        name = pf.text("name", check=port_name)
        pf.unique("name", name, names, "port names must be unique in a container")
        if host_port is not None and not host_network:
            # The pod has loopback only: the port could never be reached.
            ctx.error(
                pf.get("hostPort") or node,
                pf.sub("hostPort"),
                "publishing a port needs bridged pod networking, which podman-sd "
                "does not have yet; use hostNetwork: true",
            )
        elif host_network and host_port is not None and port is not None and host_port != port:
            ctx.error(
                pf.get("hostPort") or node,
                pf.sub("hostPort"),
                f"{host_port} must equal containerPort ({port}) with hostNetwork",
            )
        pf.finish(frozenset({"hostIP"}))
        if port is not None:
            result.append(ContainerPort(port, host_port, protocol, name))
    return tuple(result)


def _mounts(ctx: Context, f: Fields, volume_names: set[str]) -> tuple[VolumeMount, ...]:
    result = []
    paths: dict[str, int] = {}
    for node, path in f.seq("volumeMounts"):
        mf = Fields.of(ctx, node, path)
        if mf is None:
            continue
        name = mf.text("name", required=True)
        if name is not None and name not in volume_names:
            hint = suggest(name, volume_names)
            known = ", ".join(sorted(volume_names)) or "none"
            ctx.error(
                mf.get("name") or node,
                mf.sub("name"),
                f"{show(name)} names no volume in spec.volumes{hint or f' (volumes: {known})'}",
            )
            name = None
        mount_path = mf.text("mountPath", required=True, check=_absolute)
        if mount_path is not None:
            normal = "/" + "/".join(p for p in mount_path.split("/") if p)
            if normal in paths:
                ctx.error(
                    mf.get("mountPath") or node,
                    mf.sub("mountPath"),
                    f"{show(mount_path)} is a duplicate: mount paths must be unique "
                    f"(first at line {paths[normal]})",
                )
            paths[normal] = node.line
        read_only = mf.flag("readOnly") or False
        sub_path = mf.text("subPath", check=_relative_descending) or None
        mf.finish(UNSUPPORTED_MOUNT)
        if name is not None and mount_path is not None:
            result.append(VolumeMount(name, mount_path, read_only, sub_path))
    return tuple(result)


def _relative_descending(value: str) -> str | None:
    if value.startswith("/"):
        return "is not a relative path"
    if ".." in value.split("/"):
        return "must not contain '..'"
    return None


def parse_resources(ctx: Context, f: Fields, pod_level: bool) -> ResourceRequirements:
    lists = {}
    for key in ("limits", "requests"):
        lists[key] = _resource_list(ctx, f, key, pod_level)
    f.finish(frozenset({"claims"}))
    limits, requests = lists["limits"], lists["requests"]
    defaulted: dict[str, Quantity] = {}
    for attr in ("cpu", "memory", "ephemeral_storage"):
        lim: Quantity | None = getattr(limits, attr)
        req: Quantity | None = getattr(requests, attr)
        key = attr.replace("_", "-")
        if lim is not None and req is None:
            # The API server's defaulting (SetDefaults_Pod, and defaultPodRequests
            # for pod-level resources): a limit without a request is the request too.
            defaulted[attr] = lim
        elif lim is not None and req is not None and req.value > lim.value:
            node = f.node.value["requests"][1].value[key][1]
            ctx.error(
                node,
                f"{f.path}.requests.{key}",
                f"{show(req.text)} is more than the limit {show(lim.text)}",
            )
        elif lim is not None and req is not None and attr != "ephemeral_storage":
            # A limit above the host's capacity is allowed (Kubernetes only
            # schedules by requests) but never binds. Without a request the
            # limit is the request, and host_checks() reports it as one.
            problem = over_capacity(attr, lim)
            if problem:
                node = f.node.value["limits"][1].value[key][1]
                ctx.warn(
                    node,
                    f"{f.path}.limits.{key}",
                    f"{problem} (allowed for a limit; it never binds)",
                )
    if defaulted:
        requests = replace(requests, **defaulted)
    return ResourceRequirements(limits=limits, requests=requests)


def _resource_list(ctx: Context, parent: Fields, key: str, pod_level: bool) -> ResourceList:
    f = parent.fields(key)
    if f is None:
        return ResourceList()
    values: dict[str, Quantity] = {}
    allowed = ("cpu", "memory") if pod_level else tuple(RESOURCES)
    for name, (key_node, value_node) in f.node.value.items():
        path = f"{f.path}.{name}"
        if name not in allowed:
            if name in RESOURCES or name.startswith("hugepages-") or "/" in name:
                ctx.error(
                    key_node,
                    path,
                    "not supported on a single host"
                    + (" (pod-level resources take cpu and memory)" if pod_level else ""),
                )
            else:
                ctx.error(
                    key_node,
                    path,
                    f"unknown resource {show(name)}{suggest(name, set(allowed))}"
                    f" (supported: {', '.join(allowed)})",
                )
            continue
        q = parse_quantity_node(ctx, value_node, path)
        if q is None:
            continue
        ctx.positions[path] = (value_node.line, value_node.column)
        if name != "cpu" and q.value.denominator != 1:
            ctx.warn(
                value_node,
                path,
                f"{show(value_node.text)} is not a whole number of bytes; {q.ceil()} is used",
            )
        values[RESOURCES[name]] = q
    return ResourceList(**values)


def _security_context(ctx: Context, parent: Fields) -> SecurityContext:
    f = parent.fields("securityContext")
    if f is None:
        return SecurityContext()
    capabilities = None
    cf = f.fields("capabilities")
    if cf is not None:
        lists = {}
        for key in ("add", "drop"):
            names = []
            for node, path in cf.seq(key):
                text = as_str(ctx, node, path)
                if text is None:
                    continue
                bare = text.upper().removeprefix("CAP_")
                if bare not in CAPABILITIES:
                    ctx.error(
                        node,
                        path,
                        f"{show(text)} is not a Linux capability{suggest(bare, CAPABILITIES)}",
                    )
                    continue
                names.append(bare)
            lists[key] = tuple(names)
        cf.finish()
        capabilities = Capabilities(add=lists["add"], drop=lists["drop"])
    result = SecurityContext(
        run_as_user=f.integer("runAsUser"),
        run_as_group=f.integer("runAsGroup"),
        run_as_non_root=f.flag("runAsNonRoot"),
        read_only_root_filesystem=f.flag("readOnlyRootFilesystem"),
        allow_privilege_escalation=f.flag("allowPrivilegeEscalation"),
        privileged=f.flag("privileged"),
        capabilities=capabilities,
    )
    if result.run_as_non_root and result.run_as_user == 0:
        ctx.error(
            f.get("runAsUser") or f.node,
            f.sub("runAsUser"),
            "0 (root) contradicts runAsNonRoot: true",
        )
    if result.privileged and result.allow_privilege_escalation is False:
        # The API server refuses this combination too.
        ctx.error(
            f.get("allowPrivilegeEscalation") or f.node,
            f.sub("allowPrivilegeEscalation"),
            "false cannot be combined with privileged: true",
        )
    f.finish(UNSUPPORTED_SC)
    return result


def _present(f: Fields, key: str) -> bool:
    pair = f.node.value.get(key)
    return pair is not None and not (pair[1].kind is Kind.SCALAR and pair[1].value is None)


def _exec(ctx: Context, parent: Fields) -> ExecAction | None:
    f = parent.fields("exec")
    if f is None:
        return None
    command = f.strs("command")
    f.finish()
    if not command:
        ctx.error(f.node, f.sub("command"), "needs at least one word (the program to run)")
        return None
    return ExecAction(command)


def _port_ref(ctx: Context, f: Fields, port_names: set[str]) -> int | str | None:
    node = f.get("port", required=True)
    if node is None:
        return None
    if node.kind is Kind.SCALAR and isinstance(node.value, str):
        if node.value not in port_names:
            known = ", ".join(sorted(port_names)) or "none"
            ctx.error(
                node,
                f.sub("port"),
                f"{show(node.value)} names no port of this container (named ports: {known})",
            )
            return None
        return node.value
    return as_int(ctx, node, f.sub("port"), 1, 65535)


def _probe(ctx: Context, f: Fields, port_names: set[str], key: str) -> Probe | None:
    exec_action = _exec(ctx, f)
    http_get = tcp_socket = None
    hf = f.fields("httpGet")
    if hf is not None:
        port = _port_ref(ctx, hf, port_names)
        path = hf.text("path") or "/"
        host = hf.text("host") or None
        scheme = hf.choice("scheme", URIScheme) or URIScheme.HTTP
        headers = []
        for node, hpath in hf.seq("httpHeaders"):
            hdr = Fields.of(ctx, node, hpath)
            if hdr is None:
                continue
            name = hdr.text("name", required=True, check=http_header)
            value = hdr.text("value")
            hdr.finish()
            if name is not None:
                headers.append(HTTPHeader(name, value or ""))
        hf.finish()
        if port is not None:
            http_get = HTTPGetAction(port, path, host, scheme, tuple(headers))
    tf = f.fields("tcpSocket")
    if tf is not None:
        port = _port_ref(ctx, tf, port_names)
        host = tf.text("host") or None
        tf.finish()
        if port is not None:
            tcp_socket = TCPSocketAction(port, host)
    handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if _present(f, k)]
    if not handlers:
        ctx.error(f.node, f.path, "needs a handler: exec, httpGet or tcpSocket")
    elif len(handlers) > 1:
        ctx.error(
            f.node,
            f.path,
            f"has {len(handlers)} handlers ({', '.join(handlers)}); give exactly one",
        )
    # Zero means "unset" for these in Kubernetes, which then applies the default.
    timing = {
        "initial_delay_seconds": f.integer("initialDelaySeconds") or 0,
        "timeout_seconds": f.integer("timeoutSeconds") or 1,
        "period_seconds": f.integer("periodSeconds") or 10,
        "success_threshold": f.integer("successThreshold") or 1,
        "failure_threshold": f.integer("failureThreshold") or 3,
    }
    success = f.get("successThreshold")
    if key != "readinessProbe" and success is not None and timing["success_threshold"] != 1:
        ctx.error(success, f.sub("successThreshold"), f"{success.value} must be 1 for a {key}")
    grace_node = f.get("terminationGracePeriodSeconds")
    grace = f.integer("terminationGracePeriodSeconds", 1)
    if grace_node is not None and key == "readinessProbe":
        ctx.error(
            grace_node,
            f.sub("terminationGracePeriodSeconds"),
            "must not be set for a readinessProbe",
        )
    f.finish(UNSUPPORTED_PROBE)
    if len([h for h in (exec_action, http_get, tcp_socket) if h]) != 1:
        return None
    return Probe(
        exec_action, http_get, tcp_socket, termination_grace_period_seconds=grace, **timing
    )


def _lifecycle(ctx: Context, f: Fields) -> Lifecycle:
    hooks = {}
    for key in ("postStart", "preStop"):
        hf = f.fields(key)
        if hf is None:
            continue
        action = _exec(ctx, hf)
        present = [k for k in ("exec", *sorted(UNSUPPORTED_HANDLER)) if _present(hf, k)]
        if not present:
            ctx.error(hf.node, hf.path, "needs a handler: exec")
        hf.finish(UNSUPPORTED_HANDLER, hints=dict.fromkeys(UNSUPPORTED_HANDLER, HANDLER_HINT))
        if action is not None:
            hooks[key] = LifecycleHandler(action)
    f.finish(frozenset({"stopSignal"}))
    return Lifecycle(post_start=hooks.get("postStart"), pre_stop=hooks.get("preStop"))
