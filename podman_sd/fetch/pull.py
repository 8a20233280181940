"""Pull one image from a source into the store, verifying everything.

The order matters for the security model: the manifest is verified against
the digest it was resolved to (and, with a trust policy, its signatures are
checked) before any blob is fetched; each blob is hashed while it streams
into ``incoming/`` and renamed into place only when it matches; the image
record is written last. If anything fails, the blobs this pull added are
removed again, so a failed pull leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Any

from podman_sd.errors import ImageError, PodmanSdError
from podman_sd.fetch.source import ImageSource
from podman_sd.image.spec import (
    INDEX_TYPES,
    MAX_DOCUMENT_SIZE,
    Descriptor,
    document_media_type,
    host_platform,
    parse_config,
    parse_index,
    parse_manifest,
)
from podman_sd.image.store import ImageRecord, LayerRecord, Store

# Given the reference and the manifest digest, returns a record of how the
# image was verified, or raises to refuse it. The trust policy plugs in here.
Verifier = Callable[[str, str], dict[str, Any]]


def _check_digest(data: bytes, expected: str, what: str) -> None:
    actual = f"sha256:{hashlib.sha256(data).hexdigest()}"
    if actual != expected:
        raise ImageError(f"{what}: content has digest {actual}, expected {expected}")


def _collect(source: ImageSource, descriptor: Descriptor, limit: int) -> bytes:
    data = bytearray()
    for chunk in source.fetch_blob(descriptor):
        data += chunk
        if len(data) > limit:
            raise ImageError(
                f"image {source.describe()}: blob {descriptor.digest} exceeds {limit} bytes"
            )
    return bytes(data)


def resolve_manifest(source: ImageSource) -> tuple[Descriptor, bytes]:
    """The image manifest for this host, following an index if there is one."""
    what = f"image {source.describe()}"
    descriptor = source.resolve()
    raw = source.fetch_manifest(descriptor)
    _check_digest(raw, descriptor.digest, f"{what}: manifest")
    if document_media_type(raw, what, descriptor.media_type) in INDEX_TYPES:
        index = parse_index(raw, f"{what}: index")
        os_name, arch = host_platform()
        entry = index.for_platform(os_name, arch)
        if entry is None:
            found = sorted({f"{e.platform_os}/{e.platform_arch}" for e in index.manifests})
            raise ImageError(
                f"{what}: no image for {os_name}/{arch} (the index has {', '.join(found) or 'none'})"
            )
        descriptor = entry
        raw = source.fetch_manifest(descriptor)
        _check_digest(raw, descriptor.digest, f"{what}: manifest")
        if document_media_type(raw, what, descriptor.media_type) in INDEX_TYPES:
            raise ImageError(f"{what}: an index entry points at another index")
    return descriptor, raw


def pull(
    source: ImageSource,
    store: Store,
    reference: str,
    verify: Verifier | None = None,
) -> ImageRecord:
    what = f"image {source.describe()}"
    descriptor, raw_manifest = resolve_manifest(source)
    verification = verify(reference, descriptor.digest) if verify else {"policy": "none"}
    manifest = parse_manifest(raw_manifest, f"{what}: manifest")
    raw_config = _collect(source, manifest.config, MAX_DOCUMENT_SIZE)
    _check_digest(raw_config, manifest.config.digest, f"{what}: config")
    config = parse_config(raw_config, f"{what}: config")
    if len(config.diff_ids) != len(manifest.layers):
        raise ImageError(
            f"{what}: the config lists {len(config.diff_ids)} diff ids for {len(manifest.layers)} layers"
        )
    added: list[str] = []
    with store.locked():
        store.clean_incoming()
        try:
            for digest, chunks in (
                (descriptor.digest, iter((raw_manifest,))),
                (manifest.config.digest, iter((raw_config,))),
            ):
                if not store.has_blob(digest):
                    store.commit_blob(digest, chunks)
                    added.append(digest)
            for layer in manifest.layers:
                if not store.has_blob(layer.digest):
                    try:
                        store.commit_blob(layer.digest, source.fetch_blob(layer), layer.size)
                    except PodmanSdError as err:
                        raise ImageError(f"{what}: layer {layer.digest}: {err}") from None
                    added.append(layer.digest)
            record = ImageRecord(
                reference=reference,
                manifest_digest=descriptor.digest,
                config_digest=manifest.config.digest,
                layers=tuple(
                    LayerRecord(layer.digest, diff_id, layer.media_type, layer.size)
                    for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
                ),
                verification=verification,
            )
            store.put_image(record)
        except BaseException:
            for digest in added:
                with contextlib.suppress(FileNotFoundError):
                    store.blob_path(digest).unlink()
            raise
    return record
