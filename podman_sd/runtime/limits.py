"""Kubernetes resources mapped to systemd resource-control properties.

    limits.memory    -> MemoryMax=          requests.memory -> MemoryLow=
    limits.cpu       -> CPUQuota= (as CPUQuotaPerSecUSec)
    requests.cpu     -> CPUWeight=          (the kubelet's shares→weight formula)
    podman-sd.io/pids-limit annotation -> TasksMax= on the pod's slice

Properties are (name, D-Bus signature, value) as org.freedesktop.systemd1(5)
documents them, applied to each app's scope and, for pod-level resources,
to the pod's slice.
"""

from __future__ import annotations

from podman_sd.manifest.model import Pod, ResourceRequirements

Property = tuple[str, str, int]

PIDS_LIMIT_ANNOTATION = "podman-sd.io/pids-limit"


def cpu_weight(milli_cpu: int) -> int:
    """cgroup v2 weight for a cpu request, as the kubelet computes it."""
    shares = max(2, milli_cpu * 1024 // 1000)
    return 1 + ((shares - 2) * 9999) // 262142


def resource_properties(resources: ResourceRequirements | None) -> tuple[Property, ...]:
    if resources is None:
        return ()
    props: list[Property] = []
    limits, requests = resources.limits, resources.requests
    if limits.memory is not None:
        props.append(("MemoryMax", "t", limits.memory.ceil()))
    if limits.cpu is not None:
        props.append(("CPUQuotaPerSecUSec", "t", limits.cpu.milli() * 1000))
    if requests.memory is not None:
        props.append(("MemoryLow", "t", requests.memory.ceil()))
    if requests.cpu is not None:
        props.append(("CPUWeight", "t", cpu_weight(requests.cpu.milli())))
    return tuple(props)


def pod_slice_properties(pod: Pod) -> tuple[Property, ...]:
    props = list(resource_properties(pod.spec.resources))
    pids = pod.annotations.get(PIDS_LIMIT_ANNOTATION)
    if pids is not None and pids.isdigit():
        props.append(("TasksMax", "t", int(pids)))
    return tuple(props)
