"""Benchmark: lines per second from an app into the journal, all fields on.

The app writes N lines as fast as it can; the time runs from `systemctl
start` until the last line is readable in the journal. The floor is the same
command run by `systemd-run`, writing straight to journald through its
stdout stream (no per-line fields). Goal: at least 0.5x the floor.

    sudo .venv/bin/python -m bench.logs [--lines 200000]
"""

from __future__ import annotations

import argparse

from bench.common import bench_host, pod_manifest

# Start UNIT by ARGV, wait until its last line (N) is in the journal; print seconds.
RUN_AND_WAIT = r"""
import subprocess, sys, time
n, unit, match = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.monotonic()
subprocess.run(sys.argv[4:], check=True, stdout=subprocess.DEVNULL)
query = ["journalctl", "-u", unit, match, "-n", "1", "-o", "cat"]
while subprocess.run(query, capture_output=True, text=True).stdout.strip() != n:
    time.sleep(0.02)
print(time.monotonic() - start)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    n = str(args.lines)
    with bench_host() as host:
        command = f'["sh", "-c", "seq 1 {n}; exec sleep 100000"]'
        host.write_file("/etc/podman-sd/pods/logs.yaml", pod_manifest("logs", command))
        host.run("systemctl", "daemon-reload")
        ours = float(
            host.run(
                "python3",
                "-c",
                RUN_AND_WAIT,
                n,
                "pod@logs",
                "CONTAINER_NAME=app",
                "systemctl",
                "start",
                "pod@logs",
                timeout=600,
            ).stdout
        )
        host.run("systemctl", "stop", "pod@logs")
        floor = float(
            host.run(
                "python3",
                "-c",
                RUN_AND_WAIT,
                n,
                "floor.service",
                "_SYSTEMD_UNIT=floor.service",
                "systemd-run",
                "--unit=floor",
                "-p",
                "LogRateLimitIntervalSec=1s",
                "-p",
                "LogRateLimitBurst=1000000000",
                "-p",
                "SyslogIdentifier=app",
                "/bin/busybox",
                "seq",
                "1",
                n,
                timeout=600,
            ).stdout
        )
        print(f"podman-sd (all fields)      : {args.lines / ours:10.0f} lines/s ({ours:.2f} s)")
        print(f"systemd-run stdout (floor)  : {args.lines / floor:10.0f} lines/s ({floor:.2f} s)")
        print(f"ratio podman-sd/floor: {floor / ours:.2f} (goal: >= 0.50)")


if __name__ == "__main__":
    main()
