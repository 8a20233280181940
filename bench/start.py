"""Benchmark: start latency of a one-app busybox pod, next to `podman run -d`.

`systemctl start pod@NAME` returns at READY=1, once the app runs in its
scope; `podman run -d` returns once the container runs. Both with the image
already in their stores, in the same test host, alternated, median of 20.
podman runs three ways (``bench/common.py``, PODMAN_PEERS): with the same
isolation as the pod (the goal's peer), with its defaults, and without
cgroups. The floor is `systemd-run --scope true`; the Python and pydbus
floors (``bench/start_floors.py``) show what any launcher written as issue 7
asks (Python, scopes made with pydbus) cannot go below on the same machine.
Goal: podman-sd <= 0.5x podman.

    sudo .venv/bin/python -m bench.start [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics

from bench.common import PODMAN_PEERS, bench_host, pod_manifest, podman_image_id, summary, timings
from bench.start_floors import install_floors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with bench_host() as host:
        host.write_file("/etc/podman-sd/pods/bench.yaml", pod_manifest("bench"))
        host.run("systemctl", "daemon-reload")
        image = podman_image_id(host)
        ours: list[float] = []
        theirs: dict[str, list[float]] = {peer: [] for peer in PODMAN_PEERS}
        # Alternate in small batches, so drift on a noisy machine hits all.
        for _ in range(max(1, args.runs // 5)):
            ours += timings(
                host, 5, ["systemctl", "start", "pod@bench"], ["systemctl", "stop", "pod@bench"]
            )
            for peer, podman_run in PODMAN_PEERS.items():
                theirs[peer] += timings(
                    host, 5, [*podman_run, "--name=bench", image, "sleep", "100000"],
                    ["podman", "rm", "-f", "-t", "0", "bench"],
                )  # fmt: skip
        floors = {name: timings(host, 10, *cmds) for name, cmds in install_floors(host).items()}
        floor = timings(host, 10, ["systemd-run", "--scope", "--quiet", "true"])
        goal_peer = statistics.median(theirs["same isolation"])
        print(summary("systemctl start pod@bench", ours))
        for peer, values in theirs.items():
            ratio = statistics.median(ours) / statistics.median(values)
            print(summary(f"podman run -d, {peer} (pod {ratio:.2f}x)", values))
        print(summary("systemd-run --scope true (floor)", floor))
        for name, values in floors.items():
            ratio = statistics.median(values) / goal_peer
            print(summary(f"{name} floor ({ratio:.2f}x podman)", values))
        ratio = statistics.median(ours) / goal_peer
        print(f"ratio podman-sd/podman (same isolation): {ratio:.2f} (goal: <= 0.50)")


if __name__ == "__main__":
    main()
