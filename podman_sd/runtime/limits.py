"""Kubernetes resources mapped to systemd resource-control properties.

    limits.memory    -> MemoryMax=          requests.memory -> MemoryLow=
    limits.cpu       -> CPUQuota= (as CPUQuotaPerSecUSec)
    requests.cpu     -> CPUWeight=          (the kubelet's shares→weight formula)
    podman-sd.io/pids-limit annotation -> TasksMax= on the pod's slice

A limit of 0 means no limit, as for the kubelet (systemd refuses a zero
MemoryMax= or CPUQuota= anyway). A request missing next to a limit was set
to the limit by the parser, as the API server's defaulting does.

Properties are (name, D-Bus signature, value) as org.freedesktop.systemd1(5)
documents them, applied to each app's scope and, for pod-level resources,
to the pod's slice.
"""

from __future__ import annotations

from podman_sd.manifest.model import Pod, ResourceRequirements

Property = tuple[str, str, int]

# systemd's "infinity" for these properties (CGROUP_LIMIT_MAX, USEC_INFINITY):
# a quantity too large for a uint64 is no limit, as it could never be reached.
_UINT64_MAX = 2**64 - 1


def cpu_weight(milli_cpu: int) -> int:
    """cgroup v2 weight for a cpu request, as the kubelet computes it
    (MilliCPUToShares, between MinShares 2 and MaxShares 262144, then the
    shares→weight formula): 1 to 10000, the range systemd takes."""
    shares = min(max(2, milli_cpu * 1024 // 1000), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def resource_properties(resources: ResourceRequirements | None) -> tuple[Property, ...]:
    if resources is None:
        return ()
    props: list[Property] = []
    limits, requests = resources.limits, resources.requests
    if limits.memory is not None and limits.memory.value > 0:
        props.append(("MemoryMax", "t", min(limits.memory.ceil(), _UINT64_MAX)))
    if limits.cpu is not None and limits.cpu.value > 0:
        props.append(("CPUQuotaPerSecUSec", "t", min(limits.cpu.milli() * 1000, _UINT64_MAX)))
    if requests.memory is not None and requests.memory.value > 0:
        # MemoryLow=0 is systemd's default already: no protection.
        props.append(("MemoryLow", "t", min(requests.memory.ceil(), _UINT64_MAX)))
    if requests.cpu is not None:
        # A request of 0 gets the kubelet's minimum, 2 shares: weight 1, the
        # least of any cgroup (an app that asked for nothing yields to all).
        props.append(("CPUWeight", "t", cpu_weight(requests.cpu.milli())))
    return tuple(props)


def pod_slice_properties(pod: Pod) -> tuple[Property, ...]:
    props = list(resource_properties(pod.spec.resources))
    if pod.unit.pids_limit is not None:  # the parser checked the annotation
        props.append(("TasksMax", "t", pod.unit.pids_limit))
    return tuple(props)
