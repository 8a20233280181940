"""Checks that depend on the machine, not on the manifest alone.

``podman-sd validate`` reports them as warnings (the manifest may be meant
for another host); the launcher calls ``host_checks`` with
``severity=Severity.ERROR`` and refuses to start the pod on any finding.

A limit above the host's CPUs or memory is no such finding: Kubernetes
allows it (only requests must fit a node), so the parser reports it as a
warning of the pod (``over_capacity``), the same in validate and at start.
"""

from __future__ import annotations

import functools
import math
import os
import stat
from collections.abc import Callable, Iterable
from fractions import Fraction

from podman_sd.manifest.diagnostics import Diagnostic, Severity, show
from podman_sd.manifest.model import HostPathType, Pod, Protocol, ResourceRequirements
from podman_sd.manifest.quantity import Quantity

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
    that do not exist, requests for more CPU or memory than the host has."""
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


def over_capacity(resource: str, quantity: Quantity) -> str | None:
    """Why QUANTITY of RESOURCE ("cpu" or "memory") is more than this host
    has, or None when it fits."""
    capacity = _capacity_of(resource)
    if capacity is None or quantity.value <= capacity[0]:
        return None
    return f"{show(quantity.text)} is more than {capacity[1]}"


def _capacity_of(resource: str) -> tuple[int, str] | None:
    if resource == "cpu":
        cpus = os.cpu_count() or 1
        return cpus, f"the {cpus} CPUs of this host"
    memory = _mem_total() if resource == "memory" else None
    return None if memory is None else (memory, f"the {memory // 2**20}Mi of memory of this host")


def _capacity(pod: Pod, report: Report) -> None:
    """Requests must fit the host, as they must fit a node's allocatable
    resources for the scheduler. Limits may be larger (the parser warns)."""
    spec = pod.spec
    for resource in ("cpu", "memory"):
        reported = False
        for key, containers in (
            ("initContainers", spec.init_containers),
            ("containers", spec.containers),
        ):
            for i, c in enumerate(containers):
                base = f"spec.{key}[{i}].resources"
                reported |= _report_request_over(pod, base, c.resources, resource, report)
        if spec.resources is not None:
            reported |= _report_request_over(
                pod, "spec.resources", spec.resources, resource, report
            )
        if reported or (
            spec.resources is not None and _request(spec.resources, resource) is not None
        ):
            continue  # a pod-level request replaces the sum of the containers'
        # Each app fits; together they must too (init containers run alone).
        capacity = _capacity_of(resource)
        total = Fraction(0)
        for i, c in enumerate(spec.containers):
            request = _request(c.resources, resource)
            if request is None or capacity is None:
                continue
            total += request.value
            if total > capacity[0]:
                report(
                    _request_path(pod, f"spec.containers[{i}].resources", resource),
                    f"the pod's {resource} requests add up to {_total_text(resource, total)}, "
                    f"more than {capacity[1]}",
                )
                break


def _request(resources: ResourceRequirements, resource: str) -> Quantity | None:
    value: Quantity | None = getattr(resources.requests, resource)
    return value


def _request_path(pod: Pod, base: str, resource: str) -> str:
    """Where the request was written; a request defaulted from the limit
    (the API server's defaulting) is reported at the limit."""
    written = f"{base}.requests.{resource}"
    return written if written in pod.positions else f"{base}.limits.{resource}"


def _report_request_over(
    pod: Pod, base: str, resources: ResourceRequirements, resource: str, report: Report
) -> bool:
    """Report a request above the host; say whether there was one."""
    request = _request(resources, resource)
    problem = None if request is None else over_capacity(resource, request)
    if problem is None:
        return False
    path = _request_path(pod, base, resource)
    if path.endswith(f".requests.{resource}"):
        report(path, f"{problem}; a request must fit the host")
    else:
        report(
            path,
            f"{problem}; with no requests.{resource} it is also the request, which "
            f"must fit the host (set a smaller requests.{resource})",
        )
    return True


def _total_text(resource: str, total: Fraction) -> str:
    if resource == "cpu":
        return f"{math.ceil(total * 1000)}m"
    return f"{math.ceil(total / 2**20)}Mi"


@functools.cache  # read once per process: the generator parses many pods
def _mem_total() -> int | None:
    return _read_mem_total()


def _read_mem_total() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
