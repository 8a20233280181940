"""``podman-sd image prune``: remove what no image references and no pod uses.

Unpacked layers are kept while an image record names them or a pod or an
``image mount`` uses them (``image/layer_use.py``); blobs are kept while an
image record names them. The store's locks are held, so no pull, unpack or
pod start runs meanwhile.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from podman_sd.image import layer_use
from podman_sd.image.store import Store


@dataclass(frozen=True)
class PruneResult:
    layers: tuple[str, ...]
    blobs: tuple[str, ...]


def prune(store: Store) -> PruneResult:
    # Lock order as everywhere: layer use, unpacking, pulls, the store.
    with layer_use.deciding(store.root), store.layers_locked(), store.no_pulls(), store.locked():
        images = store.images().values()
        keep_layers = {path.name for image in images for path in store.layer_dirs(image)}
        keep_layers |= layer_use.in_use()
        keep_blobs = {
            digest.removeprefix("sha256:")
            for image in images
            for digest in (
                image.manifest_digest,
                image.config_digest,
                *(layer.digest for layer in image.layers),
            )
        }
        removed_layers = []
        for entry in sorted(store.layers.iterdir()):
            if entry.name.startswith(".") or entry.name in keep_layers:
                continue
            shutil.rmtree(entry)
            removed_layers.append(f"sha256:{entry.name}")
        removed_blobs = []
        for entry in sorted(store.blobs.iterdir()):
            if entry.name not in keep_blobs:
                entry.unlink()
                removed_blobs.append(f"sha256:{entry.name}")
    return PruneResult(tuple(removed_layers), tuple(removed_blobs))
