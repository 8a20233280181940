"""A pod's launch plan: everything the manifest and the image configs decide,
resolved once, as plain data.

Starting a pod from its manifest means YAML, the manifest model, the image
store and the config parser: tens of milliseconds of imports alone. Starting
it from its plan needs none of them. The launcher compiles the plan on a
start that finds no valid cached one, and caches it in
/run/podman-sd/plans/NAME.plan (gone at reboot) when that is safe:

- the cache key is the manifest file, the image index, the host's
  resolv.conf and the plan format, by identity and modification time;
- a pod with ``imagePullPolicy: Always`` or a ``hostPort`` is never cached
  (each start must ask the registry, or check the other pods' ports).

The plan is marshalled: this module is the only writer, the file is root's
and the reader is the same interpreter.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
from pathlib import Path
from typing import Any

from podman_sd import names, paths

PLAN_VERSION = 8  # bump when the plan's shape changes: old cached plans are ignored


def signal_number(name: str | None) -> int:
    """An image's StopSignal ("SIGQUIT", "QUIT" or "3") as a number."""
    if not name:
        return int(signal.SIGTERM)
    text = name.upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        return int(signal.SIGTERM)


# -- the cache -----------------------------------------------------------------


def _stat_key(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def manifest_key(pod: str) -> tuple[Any, ...]:
    """The manifest's part of the key: taken BEFORE the manifest is read, so
    that a manifest changed meanwhile can only make the saved key stale."""
    return (PLAN_VERSION, _stat_key(paths.manifest_path(pod)), _stat_key(Path("/etc/resolv.conf")))


def images_key() -> tuple[Any, ...]:
    """The image index's part: taken after the images were pulled, so that
    the pull a plan needed does not invalidate it at once."""
    return (_stat_key(paths.state_dir() / "images.json"),)


def cache_key(pod: str) -> tuple[Any, ...]:
    return manifest_key(pod) + images_key()


def plan_path(pod: str) -> Path:
    return paths.runtime_dir() / "plans" / f"{pod}.plan"


def load_cached(pod: str) -> dict[str, Any] | None:
    """The cached plan, if it is still what the files on disk would give."""
    try:
        with open(plan_path(pod), "rb") as file:
            cached = marshal.load(file)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(cached, dict) or cached.get("key") != cache_key(pod):
        return None
    plan: dict[str, Any] = cached["plan"]
    layers = {layer for app in (*plan["init"], *plan["apps"]) for layer in app["launch"]["layers"]}
    if not all(os.path.isdir(layer) for layer in layers):
        return None  # pruned meanwhile
    return plan


def save(pod: str, plan: dict[str, Any], key: tuple[Any, ...]) -> None:
    if not plan["cacheable"]:
        return
    path = plan_path(pod)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        marshal.dump({"key": key, "plan": plan}, out)
    os.rename(tmp, path)


def forget(pod: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(plan_path(pod))


# -- compiling -------------------------------------------------------------------


def _port(value: int | str, container: Any) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(value, int):
        return value
    for port in container.ports:
        if port.name == value:
            return int(port.container_port)
    raise ValueError(f"container {container.name}: no port named {value!r}")


def _probe_plan(probe: Any, container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "initial_delay": probe.initial_delay_seconds,
        "period": probe.period_seconds,
        "timeout": probe.timeout_seconds,
        "success": probe.success_threshold,
        "failure": probe.failure_threshold,
    }
    # The pod's address: it has loopback only (or the host's network).
    if probe.exec is not None:
        spec.update(kind="exec", command=list(probe.exec.command))
    elif probe.http_get is not None:
        action = probe.http_get
        spec.update(
            kind="http",
            host=action.host or "127.0.0.1",
            port=_port(action.port, container),
            path=action.path,
            scheme=action.scheme.value,
            headers=[(h.name, h.value) for h in action.http_headers],
        )
    else:
        action = probe.tcp_socket
        spec.update(kind="tcp", host=action.host or "127.0.0.1", port=_port(action.port, container))
    return spec


def _image_volumes(volumes: tuple[str, ...], mounts: Any) -> tuple[str, ...]:
    """The image's Volumes no volumeMount of the container covers (at the
    path or above it): made as directories in the app's root, CRI-O's default
    (``image_volumes = "mkdir"``). A tuple: marshal keeps it one, so the app
    gets the same from a fresh plan and a cached one."""
    covering = {os.path.normpath("/" + m.mount_path.lstrip("/")).rstrip("/") for m in mounts}
    return tuple(
        path for path in volumes if not any(path == m or path.startswith(m + "/") for m in covering)
    )


def compile_plan(pod: Any, prepared: dict[str, Any]) -> dict[str, Any]:
    """The plan of POD (a manifest.Pod) whose images PREPARED holds.

    PREPARED maps a container name to an object with ``image`` (the store's
    record), ``config`` (the parsed image config) and ``layers`` (paths)."""
    from podman_sd.manifest.model import PullPolicy, TerminationMessagePolicy
    from podman_sd.runtime import appspec, caps, limits, podfiles

    spec = pod.spec
    hostname = spec.hostname or pod.name
    security = spec.security_context

    def app_plan(container: Any) -> dict[str, Any]:
        image = prepared[container.name]
        config = image.config
        env = appspec.app_environment(pod, container, config)
        context = container.security_context
        capabilities = context.capabilities
        privileged = bool(context.privileged)
        groups = tuple(security.supplemental_groups)
        if security.fs_group is not None:
            groups = (*groups, security.fs_group)
        non_root = context.run_as_non_root
        if non_root is None:
            non_root = security.run_as_non_root
        return {
            "launch": {
                "pod": pod.name,
                "name": container.name,
                "argv": list(appspec.app_argv(container, config, env)),
                "env": dict(env),
                "working_dir": container.working_dir or config.working_dir or "/",
                "user": appspec.app_user(pod, container, config),
                "supplementary_groups": list(groups),
                "capabilities": sorted(
                    caps.effective_set(
                        capabilities.add if capabilities else (),
                        capabilities.drop if capabilities else (),
                        privileged,
                    )
                ),
                "no_new_privileges": not privileged
                and context.allow_privilege_escalation is not True,
                "layers": [str(layer) for layer in image.layers],
                "seccomp": not privileged,  # as podman --privileged: no filter
                "run_as_non_root": bool(non_root),
                "stop_signal": signal_number(config.stop_signal),
                "image": image.image.reference,
                # The image this plan starts, for `podman-sd status` (the
                # reference may point to another image by then).
                "image_digest": image.image.manifest_digest,
                "image_volumes": _image_volumes(config.volumes, container.volume_mounts),
            },
            "read_only": bool(context.read_only_root_filesystem),
            "mounts": [
                (m.name, m.sub_path, m.mount_path, m.read_only) for m in container.volume_mounts
            ],
            "scope_properties": list(limits.resource_properties(container.resources)),
            "scope": names.app_scope(pod.name, container.name),
            "termination_message_path": container.termination_message_path,
            # terminationMessagePolicy: FallbackToLogsOnError
            "message_from_logs": container.termination_message_policy
            is TerminationMessagePolicy.FALLBACK_TO_LOGS_ON_ERROR,
            "hooks": {
                name: list(handler.exec.command)
                for name, handler in (
                    ("postStart", container.lifecycle.post_start),
                    ("preStop", container.lifecycle.pre_stop),
                )
                if handler is not None
            },
            "probes": {
                kind: _probe_plan(probe, container)
                for kind, probe in (
                    ("startup", container.startup_probe),
                    ("liveness", container.liveness_probe),
                    ("readiness", container.readiness_probe),
                )
                if probe is not None
            },
        }

    volumes = []
    for volume in spec.volumes:
        if volume.host_path is not None:
            volumes.append(
                {
                    "name": volume.name,
                    "kind": "hostPath",
                    "path": volume.host_path.path,
                    "type": volume.host_path.type.value,
                }
            )
        elif volume.empty_dir is not None:
            size = volume.empty_dir.size_limit
            volumes.append(
                {
                    "name": volume.name,
                    "kind": "memory" if volume.empty_dir.medium.value == "Memory" else "emptyDir",
                    "size": None if size is None else size.ceil(),
                }
            )
    containers = (*spec.init_containers, *spec.containers)
    return {
        "pod": pod.name,
        "hostname": hostname,
        "host_network": spec.host_network,
        "host_ipc": spec.host_ipc,
        # "private" (one per app), "shared" (shareProcessNamespace) or "host" (hostPID).
        "pid_namespace": "host"
        if spec.host_pid
        else "shared"
        if spec.share_process_namespace
        else "private",
        "sysctls": [(s.name, s.value) for s in security.sysctls],
        "policy": spec.restart_policy.value,
        "grace": spec.termination_grace_period_seconds,
        "deadline": spec.active_deadline_seconds,
        "slice": names.pod_slice(pod.name),
        "slice_properties": list(limits.pod_slice_properties(pod)),
        "files": podfiles.pod_files(pod, hostname),
        "volumes": volumes,
        "fs_group": security.fs_group,
        "init": [app_plan(c) for c in spec.init_containers],
        "apps": [app_plan(c) for c in spec.containers],
        "cacheable": not any(
            c.image_pull_policy is PullPolicy.ALWAYS or any(p.host_port for p in c.ports)
            for c in containers
        ),
    }
