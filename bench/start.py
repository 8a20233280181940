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

from bench.common import (
    GOAL_PEER,
    PODMAN_PEERS,
    bench_host,
    pod_manifest,
    podman_image_id,
    summary,
    timings,
)
from bench.start_floors import install_floors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with bench_host() as host:
        host.write_file("/etc/podman-sd/pods/bench.yaml", pod_manifest("bench"))
        host.run("systemctl", "daemon-reload")
        image = podman_image_id(host)
        pod = "systemctl start pod@bench"
        # (start, undo) per row, all measured the same way, in turns.
        rows = {pod: (["systemctl", "start", "pod@bench"], ["systemctl", "stop", "pod@bench"])}
        for peer, podman_run in PODMAN_PEERS.items():
            rows[f"podman run -d, {peer}"] = (
                [*podman_run, "--name=bench", image, "sleep", "100000"],
                ["podman", "rm", "-f", "-t", "0", "bench"],
            )
        rows["systemd-run --scope true (floor)"] = (
            ["systemd-run", "--scope", "--quiet", "true"], ["true"],
        )  # fmt: skip
        for name, commands in install_floors(host).items():
            rows[f"{name} floor"] = commands
        results: dict[str, list[float]] = {row: [] for row in rows}
        # Alternate in small batches, so drift on a noisy machine hits all.
        for _ in range(max(1, args.runs // 5)):
            for row, (start, undo) in rows.items():
                results[row] += timings(host, 5, start, undo)
        goal_peer = statistics.median(results[f"podman run -d, {GOAL_PEER}"])
        for row, values in results.items():
            ratio = statistics.median(values) / goal_peer
            print(summary(f"{row} ({ratio:.2f}x)", values))
        ratio = statistics.median(results[pod]) / goal_peer
        print(
            f"ratios are to podman run -d, {GOAL_PEER}; "
            f"podman-sd/podman: {ratio:.2f} (goal: <= 0.50)"
        )


if __name__ == "__main__":
    main()
