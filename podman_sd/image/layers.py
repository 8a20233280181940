"""Unpacked layers: each layer once, in its own directory named by diff id."""

from __future__ import annotations

from pathlib import Path

from podman_sd.errors import UnpackError
from podman_sd.image.store import ImageRecord, Store


def ensure_unpacked(store: Store, image: ImageRecord) -> tuple[Path, ...]:
    """The image's layer directories, bottom first, unpacking missing ones."""
    dirs = tuple(store.layer_dir(layer.diff_id) for layer in image.layers)
    if all(d.is_dir() for d in dirs):
        return dirs
    # Imported here: starting a pod whose layers are unpacked needs none of it.
    from podman_sd.unpack import unpack_layer

    with store.layers_locked():
        for layer, target in zip(image.layers, dirs, strict=True):
            if target.is_dir():
                continue
            try:
                with store.open_blob(layer.digest) as blob:
                    unpack_layer(
                        blob,
                        layer.media_type,
                        target,
                        expected_digest=layer.digest,
                        expected_diff_id=layer.diff_id,
                    )
            except UnpackError as err:
                raise UnpackError(f"image {image.reference}: {err}") from None
    return dirs
