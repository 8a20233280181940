"""``make demo``: boot a test host, install podman-sd, run a pod, show its logs.

Everything happens inside a throwaway systemd test host, so the demo never
touches this machine's own /etc, /var or running services.
"""

from __future__ import annotations

import sys
import time

from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout

MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: greeter
    image: {image}
    env:
    - name: POD_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    command: ["/bin/sh", "-c"]
    args:
    - |
      echo "hello from pod $(POD_NAME) in my own namespaces"
      i=0; while [ $i -lt 3 ]; do i=$((i+1)); echo "tick $i"; sleep 0.2; done
      exec sleep 1000
"""


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m" if sys.stdout.isatty() else f"\n==> {text}", flush=True)


def show(host: TestHost, *argv: str) -> None:
    print(f"$ {' '.join(argv)}", flush=True)
    result = host.run(*argv, check=False)
    print((result.stdout + result.stderr).rstrip(), flush=True)


def main() -> int:
    started = time.monotonic()
    step("booting a systemd test host")
    with TestHost() as host:
        print(f"test host {host.name} running after {host.boot_seconds:.2f} s")
        step("make install (inside the test host)")
        host.install_project()
        step("building a busybox image with umoci")
        image = build_busybox_layout(host)
        # The shipped policy rejects unsigned images: trust this local one.
        accept_unsigned(host, "oci:/srv/images")
        print(image)
        host.write_file("/etc/podman-sd/pods/hello.yaml", MANIFEST.format(image=image))
        show(host, "cat", "/etc/podman-sd/pods/hello.yaml")
        step("systemctl start pod@hello")
        show(host, "systemctl", "start", "pod@hello")
        time.sleep(1)
        show(host, "systemctl", "status", "pod@hello", "--no-pager", "-n", "0")
        show(host, "systemd-cgls", "--no-pager", "/pod.slice")
        step("journalctl -u pod@hello")
        show(host, "journalctl", "-u", "pod@hello", "--no-pager", "-o", "short-monotonic")
        show(
            host, "journalctl", "-u", "pod@hello", "--no-pager", "-n", "1", "-o", "verbose",
            "CONTAINER_NAME=greeter",
        )  # fmt: skip
        step("systemctl stop pod@hello")
        show(host, "systemctl", "stop", "pod@hello")
        show(host, "systemctl", "is-active", "pod@hello")
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s; the test host is gone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
