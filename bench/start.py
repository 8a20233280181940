"""Benchmark: start latency of a one-app busybox pod, next to `podman run -d`.

`systemctl start pod@NAME` returns at READY=1, once the app runs in its
scope; `podman run -d` returns once the container runs. Both with the image
already in their stores, in the same test host, alternated, median of 20.
The floor is `systemd-run --scope true`; the Python and pydbus floors
(``bench/start_floors.py``) show what any launcher written as issue 7 asks
(Python, scopes made with pydbus) cannot go below on the same machine.
Goal: podman-sd <= 0.5x podman.

    sudo .venv/bin/python -m bench.start [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics

from bench.common import PODMAN_RUN, bench_host, pod_manifest, podman_image_id, summary, timings
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
        theirs: list[float] = []
        # Alternate in small batches, so drift on a noisy machine hits both.
        for _ in range(max(1, args.runs // 5)):
            ours += timings(
                host, 5, ["systemctl", "start", "pod@bench"], ["systemctl", "stop", "pod@bench"]
            )
            theirs += timings(
                host, 5, [*PODMAN_RUN, "--name=bench", image, "sleep", "100000"],
                ["podman", "rm", "-f", "-t", "0", "bench"],
            )  # fmt: skip
        floors = {name: timings(host, 10, *cmds) for name, cmds in install_floors(host).items()}
        floor = timings(host, 10, ["systemd-run", "--scope", "--quiet", "true"])
        podman = statistics.median(theirs)
        print(summary("systemctl start pod@bench", ours))
        print(summary("podman run -d", theirs))
        print(summary("systemd-run --scope true (floor)", floor))
        for name, values in floors.items():
            ratio = statistics.median(values) / podman
            print(summary(f"{name} floor ({ratio:.2f}x podman)", values))
        ratio = statistics.median(ours) / podman
        print(f"ratio podman-sd/podman: {ratio:.2f} (goal: <= 0.50)")


if __name__ == "__main__":
    main()
