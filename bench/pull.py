"""Benchmark: pull a 5-layer image of about 200 MB from a local registry.

Boots a test host (root needed), starts Debian's docker-registry with TLS and
basic auth inside it, pushes the image with skopeo, then prints the wall
time of ``podman-sd image pull --no-unpack`` (the sandboxed helper included;
unpacking is measured by ``bench.pull_unpack``) next to
``skopeo copy docker://… oci:DIR`` of the same image, and their ratio.

    sudo .venv/bin/python -m bench.pull [--layers 5] [--layer-mb 40] [--runs 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.system.registry_setup import BASIC, PASSWORD, USER, push, start_registries
from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned

BUILD = r"""
layout=/srv/images/big n=$1 mb=$2
umoci init --layout "$layout"
umoci new --image "$layout:big"
bundle=$(mktemp -d /srv/bundle.XXXXXX)
for i in $(seq 1 "$n"); do
  rm -rf "$bundle"; umoci unpack --image "$layout:big" "$bundle"
  head -c "${mb}M" /dev/urandom > "$bundle/rootfs/layer$i.bin"
  umoci repack --image "$layout:big" "$bundle"
done
rm -rf "$bundle"
umoci gc --layout "$layout"
"""


@contextmanager
def big_image_host(layers: int, layer_mb: int) -> Iterator[TestHost]:
    """A test host whose registry holds BASIC/big:latest, LAYERS layers of random data."""
    with TestHost(boot_timeout=30) as host:
        host.install_project()
        start_registries(host)
        accept_unsigned(host, BASIC)
        host.run("/bin/sh", "-ec", BUILD, "build", str(layers), str(layer_mb), timeout=600)
        push(host, "oci:/srv/images/big:big", f"{BASIC}/big:latest", f"{USER}:{PASSWORD}")
        yield host


def timed(host: TestHost, *argv: str) -> float:
    started = time.monotonic()
    host.run(*argv, timeout=600)
    return time.monotonic() - started


def image_arguments(doc: str) -> argparse.Namespace:
    """--layers, --layer-mb and --runs, shared by the pull benchmarks."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-mb", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args()


def main() -> None:
    args = image_arguments(__doc__)
    with big_image_host(args.layers, args.layer_mb) as host:
        ours, theirs = [], []
        for _ in range(args.runs):
            host.run("rm", "-rf", "/var/lib/podman-sd/blobs", "/var/lib/podman-sd/images.json")
            ours.append(
                timed(host, "podman-sd", "image", "pull", "--no-unpack", f"{BASIC}/big:latest")
            )
            host.run("rm", "-rf", "/srv/skopeo-out")
            skopeo = ["skopeo", "copy", "--quiet", "--src-cert-dir=/srv/tls/certs"]
            skopeo += [f"--src-creds={USER}:{PASSWORD}", f"docker://{BASIC}/big:latest"]
            theirs.append(timed(host, *skopeo, "oci:/srv/skopeo-out:big"))
        size = host.run("du", "-sm", "/var/lib/podman-sd/blobs").stdout.split()[0]
        best_ours, best_theirs = min(ours), min(theirs)
        print(f"image: {args.layers} layers, {size} MB in the store; best of {args.runs} runs")
        print(
            f"podman-sd image pull : {best_ours:6.2f} s   (all: {', '.join(f'{t:.2f}' for t in ours)})"
        )
        print(
            f"skopeo copy          : {best_theirs:6.2f} s   (all: {', '.join(f'{t:.2f}' for t in theirs)})"
        )
        print(f"ratio podman-sd/skopeo: {best_ours / best_theirs:.2f} (goal: <= 1.00)")


if __name__ == "__main__":
    main()
