"""What the runtime benchmarks share: a test host with podman-sd installed,
a busybox image trusted in its policy and imported into podman's store, and
a timer that runs inside the test host (so nsenter's cost is not counted)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager

from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout

IMAGE = "oci:/srv/images/busybox:latest"
# podman inside the test host, for conmon's memory (bench.memory). Without
# cgroups: with them, podman's default runtime crun (1.8) fails with
# "setrlimit (RLIM_MEMLOCK): Operation not permitted" whatever --ulimit
# says: it raises that limit before it loads its eBPF device filter, and
# these machines lack CAP_SYS_RESOURCE (DESIGN.md, "Test environment").
PODMAN_RUN = ["podman", "run", "-d", "--cgroups=disabled", "--ulimit", "host", "--network=none"]

# The `podman run -d` that bench.start measures next to a pod start, each as
# far as this machine lets podman go:
PODMAN_PEERS = {
    # Like for like: the container in its own systemd scope, as each app of
    # a pod is, and no network but loopback, as a pod without hostNetwork
    # (podman's systemd cgroup manager makes two scopes: conmon's and the
    # container's). runc, not crun (see above); cgroup v2 here has no pids
    # controller, so no pids limit.
    "same isolation": [
        "podman", "--runtime=runc", "run", "-d", "--pids-limit=-1", "--network=none",
    ],
    # What `podman run -d IMAGE` does by default: also a bridged network
    # (netavark), which a pod does not have yet (issue 7 leaves it for later).
    "podman defaults": ["podman", "--runtime=runc", "run", "-d", "--pids-limit=-1"],
    # Less than a pod start: no scope, no cgroup at all; crun.
    "no cgroups, crun": PODMAN_RUN,
}  # fmt: skip
# The peer bench.start's goal is measured against.
GOAL_PEER = "same isolation"

# Runs argv N times inside the host and prints each wall time in seconds.
TIMER = r"""
import subprocess, sys, time
n = int(sys.argv[1]); cmd = sys.argv[2:]; undo = None
if "--" in cmd:
    i = cmd.index("--"); cmd, undo = cmd[:i], cmd[i + 1:]
for _ in range(n):
    t = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(time.monotonic() - t, flush=True)
    if undo:
        subprocess.run(undo, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Let what the undo set off in the background settle (podman's
        # conmon runs `podman container cleanup` after the container ends),
        # so it does not eat into the next measured run, of either tool.
        time.sleep(0.3)
"""


def pod_manifest(name: str, command: str = '["sleep", "100000"]', grace: int = 0) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: app
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: {command}
"""


@contextmanager
def bench_host() -> Iterator[TestHost]:
    with TestHost(boot_timeout=30) as host:
        host.install_project()
        build_busybox_layout(host)
        accept_unsigned(host, "oci:/srv/images")
        host.run("podman", "pull", "-q", IMAGE, timeout=300)
        yield host


def podman_image_id(host: TestHost) -> str:
    return host.run("podman", "images", "-q").stdout.split()[0]


def timings(
    host: TestHost, runs: int, command: list[str], undo: list[str] | None = None
) -> list[float]:
    argv = ["python3", "-c", TIMER, str(runs), *command]
    if undo:
        argv += ["--", *undo]
    out = host.run(*argv, timeout=1200).stdout
    return [float(line) for line in out.split()]


def summary(label: str, values: list[float], unit: str = "ms", scale: float = 1000) -> str:
    return (
        f"{label:<46} median {statistics.median(values) * scale:8.1f} {unit}"
        f"   (min {min(values) * scale:.1f}, max {max(values) * scale:.1f}, n={len(values)})"
    )
