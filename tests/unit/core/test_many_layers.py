"""An overlay of many layers: more than one page of mount options would allow
with full layer paths, up to overlayfs' limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podman_sd import syscalls as sc
from podman_sd.runtime import rootfs
from tests.unit.core.forked import output_of_child


def mount_in_child(layers: list[Path], root: Path) -> str:
    """Mount LAYERS in a private mount namespace of a child; its report."""

    def body(_: int) -> bytes:
        try:
            sc.unshare(sc.CLONE_NEWNS)
            rootfs.make_mounts_private()
            (root / "upper").mkdir(parents=True)
            (root / "work").mkdir()
            (root / "mnt").mkdir()
            rootfs.mount_image(layers, root / "upper", root / "work", root / "mnt")
            return ",".join(sorted(os.listdir(root / "mnt"))).encode()
        except OSError as err:
            return f"error: {err.strerror}".encode()

    return output_of_child(body).decode()


def make_layers(base: Path, count: int) -> list[Path]:
    layers = []
    for index in range(count):
        layer = base / "layers" / f"{index:064x}"  # as long as a diff id
        layer.mkdir(parents=True)
        (layer / f"file{index:03d}").write_text(str(index))
        layers.append(layer)
    return layers


@pytest.mark.system  # needs root: mount namespaces and overlayfs
def test_two_hundred_layers_mount(tmp_path: Path) -> None:
    layers = make_layers(tmp_path, 200)
    assert len(":".join(str(p) for p in layers)) > 4096  # would not fit in one page
    listing = mount_in_child(layers, tmp_path / "app")
    assert listing.split(",") == [f"file{i:03d}" for i in range(200)]


@pytest.mark.system
def test_more_than_overlayfs_can_stack_is_a_clear_error(tmp_path: Path) -> None:
    layers = [tmp_path / f"l{i}" for i in range(rootfs.MAX_LAYERS + 1)]
    assert (
        mount_in_child(layers, tmp_path / "app")
        == "error: the image has 501 layers; overlayfs stacks at most 500"
    )
