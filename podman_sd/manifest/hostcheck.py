"""Checks that depend on the machine, not on the manifest alone.

``podman-sd validate`` reports them as warnings (the manifest may be meant
for another host); the launcher calls ``host_checks`` with
``severity=Severity.ERROR`` and refuses to start the pod on any finding.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable

from podman_sd.manifest.diagnostics import Diagnostic, Severity, show
from podman_sd.manifest.model import HostPathType, Pod, Protocol

Report = Callable[[str, str], None]

_WANTED = {
    HostPathType.DIRECTORY: (stat.S_ISDIR, "a directory"),
    HostPathType.DIRECTORY_OR_CREATE: (stat.S_ISDIR, "a directory"),
    HostPathType.FILE: (stat.S_ISREG, "a regular file"),
    HostPathType.FILE_OR_CREATE: (stat.S_ISREG, "a regular file"),
    HostPathType.SOCKET: (stat.S_ISSOCK, "a socket"),
    HostPathType.CHAR_DEVICE: (stat.S_ISCHR, "a character device"),
    HostPathType.BLOCK_DEVICE: (stat.S_ISBLK, "a block device"),
}


def host_checks(
    pod: Pod,
    other_pods: Iterable[Pod] = (),
    severity: Severity = Severity.WARNING,
) -> list[Diagnostic]:
    """Findings about ``pod`` on this host: hostPath volumes of the wrong
    type, host ports another pod (of ``other_pods``) uses, local image paths
    that do not exist, more CPU or memory than the host has."""
    found: list[Diagnostic] = []

    def report(path: str, message: str) -> None:
        line, column = pod.positions.get(path, (1, 1))
        found.append(Diagnostic(str(pod.source), line, column, path, message, severity))

    for i, volume in enumerate(pod.spec.volumes):
        if volume.host_path is not None:
            message = _host_path(volume.host_path.path, volume.host_path.type)
            if message:
                report(f"spec.volumes[{i}].hostPath.path", message)

    for key, containers in (
        ("initContainers", pod.spec.init_containers),
        ("containers", pod.spec.containers),
    ):
        for i, c in enumerate(containers):
            for transport in ("oci:", "oci-archive:"):
                if c.image.startswith(transport):
                    path = c.image[len(transport) :]
                    if not os.path.exists(path) and not os.path.exists(path.rpartition(":")[0]):
                        report(
                            f"spec.{key}[{i}].image",
                            f"{show(c.image)}: no such file or directory on this host",
                        )

    _host_ports(pod, other_pods, report)
    _capacity(pod, report)
    return found


def _host_path(path: str, kind: HostPathType) -> str | None:
    if kind is HostPathType.UNSET:
        return None
    check, what = _WANTED[kind]
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if kind is HostPathType.DIRECTORY_OR_CREATE:
            return None
        if kind is HostPathType.FILE_OR_CREATE:
            # Kubernetes creates the file but not its directory.
            parent = os.path.dirname(path.rstrip("/")) or "/"
            return None if os.path.isdir(parent) else f"{show(parent)} does not exist"
        return f"{show(path)} does not exist (type {kind.value} needs {what})"
    except OSError as e:
        return f"{show(path)} cannot be examined: {e.strerror}"
    if not check(st.st_mode):
        return f"{show(path)} is not {what} (type {kind.value})"
    return None


def _ports_of(pod: Pod) -> dict[tuple[int, Protocol], str]:
    """Host ports of a pod -> field path."""
    ports: dict[tuple[int, Protocol], str] = {}
    for key, containers in (
        ("initContainers", pod.spec.init_containers),
        ("containers", pod.spec.containers),
    ):
        for i, c in enumerate(containers):
            for j, p in enumerate(c.ports):
                port = p.host_port or (p.container_port if pod.spec.host_network else None)
                if port:
                    field = "hostPort" if p.host_port else "containerPort"
                    ports.setdefault((port, p.protocol), f"spec.{key}[{i}].ports[{j}].{field}")
    return ports


def _host_ports(pod: Pod, other_pods: Iterable[Pod], report: Report) -> None:
    mine = _ports_of(pod)
    if not mine:
        return
    for other in other_pods:
        if other.name == pod.name:
            continue
        for key in _ports_of(other).keys() & mine.keys():
            port, protocol = key
            report(
                mine[key],
                f"host port {port}/{protocol.value} is also used by "
                f"pod {other.name} ({other.source})",
            )


def _capacity(pod: Pod, report: Report) -> None:
    cpus = os.cpu_count() or 1
    memory = _mem_total()
    for key, containers in (
        ("initContainers", pod.spec.init_containers),
        ("containers", pod.spec.containers),
    ):
        for i, c in enumerate(containers):
            for kind in ("requests", "limits"):
                rl = getattr(c.resources, kind)
                base = f"spec.{key}[{i}].resources.{kind}"
                if rl.cpu is not None and rl.cpu.value > cpus:
                    report(
                        f"{base}.cpu",
                        f"{show(rl.cpu.text)} is more than the {cpus} CPUs of this host",
                    )
                if memory and rl.memory is not None and rl.memory.value > memory:
                    report(
                        f"{base}.memory",
                        f"{show(rl.memory.text)} is more than the "
                        f"{memory // 2**20}Mi of memory of this host",
                    )


def _mem_total() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
