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
# podman inside the test host. With cgroups, crun fails with "setrlimit
# (RLIM_MEMLOCK): Operation not permitted" whatever --ulimit says (these
# machines lack CAP_SYS_RESOURCE), so podman runs without: it creates no
# scope, unlike podman-sd. Hard rlimits cannot be raised either
# (DESIGN.md, "Test environment").
PODMAN_RUN = ["podman", "run", "-d", "--cgroups=disabled", "--ulimit", "host", "--network=none"]

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
        f"{label:<34} median {statistics.median(values) * scale:8.1f} {unit}"
        f"   (min {min(values) * scale:.1f}, max {max(values) * scale:.1f}, n={len(values)})"
    )
