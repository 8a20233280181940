"""Benchmark: resident memory that podman-sd costs per running pod.

Starts N one-app pods and sums the resident memory (RSS, and PSS which
shares the interpreter's pages fairly) of every podman-sd process, i.e. the
supervisor that stays resident for each pod, then divides by N. Next to it,
podman's per-container monitor, conmon, for N `podman run -d` containers.
Goal: at most 12 MB per pod.

    sudo .venv/bin/python -m bench.memory [--pods 5]
"""

from __future__ import annotations

import argparse

from bench.common import PODMAN_RUN, bench_host, pod_manifest, podman_image_id
from tests.testhost import TestHost

MEASURE = r"""
import os, sys
name = sys.argv[1]
rss = pss = n = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    try:
        comm = open(f"/proc/{pid}/comm").read().strip()
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        if comm != name and (name.encode() not in cmdline or b"supervise" not in cmdline):
            continue
        fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:])
    except OSError:
        continue
    rss += int(fields["Rss"].split()[0]); pss += int(fields["Pss"].split()[0]); n += 1
print(n, rss, pss)
"""


def measure(host: TestHost, name: str) -> tuple[int, int, int]:
    n, rss, pss = host.run("python3", "-c", MEASURE, name).stdout.split()
    return int(n), int(rss), int(pss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=5)
    args = parser.parse_args()
    with bench_host() as host:
        for i in range(args.pods):
            host.write_file(f"/etc/podman-sd/pods/mem{i}.yaml", pod_manifest(f"mem{i}"))
        host.run("systemctl", "daemon-reload")
        for i in range(args.pods):
            host.run("systemctl", "start", f"pod@mem{i}")
        # The resident supervisor runs `python3 -I -S -c ... podman_sd.runtime.supervise`.
        n, rss, pss = measure(host, "podman_sd")
        image = podman_image_id(host)
        for i in range(args.pods):
            host.run(*PODMAN_RUN, f"--name=mem{i}", image, "sleep", "100000")
        cn, crss, cpss = measure(host, "conmon")
        print(f"podman-sd: {n} resident processes for {args.pods} pods")
        print(
            f"  per pod: RSS {rss / args.pods / 1024:6.1f} MB, PSS {pss / args.pods / 1024:6.1f} MB"
        )
        print(f"conmon:    {cn} processes for {args.pods} containers")
        print(
            f"  per container: RSS {crss / args.pods / 1024:6.1f} MB, PSS {cpss / args.pods / 1024:6.1f} MB"
        )
        print(f"ratio podman-sd/conmon (RSS): {rss / max(crss, 1):.2f}")
        print(
            f"goal: <= 12 MB per pod (RSS): {'met' if rss / args.pods / 1024 <= 12 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
