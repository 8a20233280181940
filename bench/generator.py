"""Benchmark: podman-sd-generator over 100 manifests, as systemd runs it.

    python3 bench/generator.py [--pods 100] [--runs 10]

Times the whole process (interpreter start, imports, parsing, writing), the
way it costs at boot. The target is under 150 ms for 100 manifests. The
package is byte-compiled first, as an installed package is (this matters
where PYTHONDONTWRITEBYTECODE is set).
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app: {name}
    tier: bench
  annotations:
    podman-sd.io/after: {after}
    podman-sd.io/wanted-by: multi-user.target
spec:
  hostNetwork: true
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 10
  volumes:
  - name: data
    emptyDir: {{medium: Memory, sizeLimit: 64Mi}}
  - name: conf
    hostPath: {{path: /etc/{name}, type: DirectoryOrCreate}}
  initContainers:
  - name: init
    image: docker.io/library/busybox:1.36
    command: [sh, -c, "echo init > /data/ready"]
    volumeMounts:
    - {{name: data, mountPath: /data}}
  containers:
  - name: app
    image: docker.io/library/nginx:1.25
    ports:
    - {{containerPort: {port}, hostPort: {port}, name: http}}
    env:
    - {{name: MODE, value: production}}
    - name: POD_NAME
      valueFrom:
        fieldRef: {{fieldPath: metadata.name}}
    resources:
      requests: {{cpu: 100m, memory: 64Mi}}
      limits: {{cpu: "1", memory: 256Mi}}
    volumeMounts:
    - {{name: data, mountPath: /usr/share/nginx/html, readOnly: true}}
    - {{name: conf, mountPath: /etc/nginx/conf.d}}
    livenessProbe:
      httpGet: {{path: /healthz, port: http}}
      periodSeconds: 5
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {{drop: [ALL], add: [NET_BIND_SERVICE]}}
  - name: sidecar
    image: docker.io/library/busybox:1.36
    args: [sh, -c, "while true; do date; sleep 5; done"]
"""


def make_manifests(directory: Path, count: int) -> None:
    for i in range(count):
        name = f"pod-{i:03d}"
        after = f"pod-{i - 1:03d}" if i else "db"
        text = MANIFEST.format(name=name, after=after, port=20000 + i)
        (directory / f"{name}.yaml").write_text(text)


def run_once(pods: Path, out: Path) -> float:
    env = dict(os.environ, PODMAN_SD_PODS_DIR=str(pods), PYTHONPATH=str(REPO))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "podman_sd.generator", str(out), str(out), str(out)],
        env=env,
        check=True,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    compileall.compile_dir(REPO / "podman_sd", quiet=1)
    # systemd's generator output directory, /run/systemd/generator, is a
    # tmpfs; so is /dev/shm. Writing to a busy disk instead would time the disk.
    out_parent = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryDirectory(dir=out_parent) as tmp_out,
    ):
        pods = Path(tmp, "pods")
        pods.mkdir()
        make_manifests(pods, args.pods)
        times = []
        for i in range(args.runs):
            out = Path(tmp_out, f"out{i}")
            out.mkdir()
            times.append(run_once(pods, out))
        written = len(list(Path(tmp_out, "out0").glob("pod@*.service.d/*.conf")))
    if written != args.pods:
        print(f"error: {written} drop-ins written for {args.pods} manifests", file=sys.stderr)
        return 1
    best, median = min(times), sorted(times)[len(times) // 2]
    print(f"podman-sd-generator, {args.pods} manifests, {args.runs} runs:")
    print(f"  best {best * 1000:.1f} ms, median {median * 1000:.1f} ms per run")
    print(f"  {median * 1000 / args.pods:.2f} ms per manifest (median run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
