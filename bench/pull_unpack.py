"""Benchmark: pull plus unpack of a 5-layer, ~200 MB image from a local registry.

`podman-sd image pull` (the sandboxed fetch helper, then every layer unpacked
in its own sandboxed child) next to `skopeo copy docker://… oci:DIR` followed
by `umoci unpack` of the same image, in the same test host, best of N, with
the ratio. Goal: podman-sd at least 1.5x faster (ratio <= 0.67).

    sudo .venv/bin/python -m bench.pull_unpack [--layers 5] [--layer-mb 40] [--runs 3]
"""

from __future__ import annotations

from bench.pull import big_image_host, image_arguments, timed
from tests.system.registry_setup import BASIC, PASSWORD, USER


def main() -> None:
    args = image_arguments(__doc__)
    with big_image_host(args.layers, args.layer_mb) as host:
        ours, theirs = [], []
        for _ in range(args.runs):
            host.run(
                "rm", "-rf", "/var/lib/podman-sd/blobs", "/var/lib/podman-sd/images.json",
                "/var/lib/podman-sd/layers",
            )  # fmt: skip
            ours.append(timed(host, "podman-sd", "image", "pull", f"{BASIC}/big:latest"))
            host.run("rm", "-rf", "/srv/skopeo-out", "/srv/umoci-bundle")
            skopeo = ["skopeo", "copy", "--quiet", "--src-cert-dir=/srv/tls/certs"]
            skopeo += [f"--src-creds={USER}:{PASSWORD}", f"docker://{BASIC}/big:latest"]
            copy = timed(host, *skopeo, "oci:/srv/skopeo-out:big")
            unpack = timed(
                host, "umoci", "unpack", "--image", "/srv/skopeo-out:big", "/srv/umoci-bundle"
            )
            theirs.append(copy + unpack)
        best_ours, best_theirs = min(ours), min(theirs)
        print(f"image: {args.layers} layers of {args.layer_mb} MB; best of {args.runs} runs")
        print(
            f"podman-sd image pull (with unpack): {best_ours:6.2f} s  (all: {', '.join(f'{t:.2f}' for t in ours)})"
        )
        print(
            f"skopeo copy + umoci unpack        : {best_theirs:6.2f} s  (all: {', '.join(f'{t:.2f}' for t in theirs)})"
        )
        print(
            f"ratio podman-sd/(skopeo+umoci): {best_ours / best_theirs:.2f} (goal: <= 0.67, i.e. 1.5x faster)"
        )


if __name__ == "__main__":
    main()
