"""Pull one image from a source into the store, verifying everything.

The order matters for the security model: the manifest is verified against
the digest it was resolved to (and, with a trust policy, its signatures are
checked) before any blob is fetched; each blob is hashed while it streams
into ``blobs/incoming/`` and renamed into place only when it matches; the image
record is written last, under the store's lock.

Layers download in parallel. Each blob has its own lock file, so two pulls
of the same image (two pods starting at once) download every blob once: the
second waits for the first and then finds the blob in the store. If the
pull fails, the blobs it added are removed again, so a failed pull leaves
the store as it was; but only when no other pull is running, since another
pull of the same image may already count on them (they are verified
content either way).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

from podman_sd.errors import ImageError, StoreError
from podman_sd.fetch.source import ImageSource
from podman_sd.image.spec import (
    INDEX_TYPES,
    MAX_DOCUMENT_SIZE,
    Descriptor,
    ImageConfig,
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

# containers.conf's default for max_parallel_downloads.
DEFAULT_JOBS = 6


class Progress(Protocol):
    def update(self, digest: str, done: int, total: int) -> None:
        """DONE of TOTAL bytes of blob DIGEST are in; DONE == TOTAL when finished."""


class _Cancelled(Exception):
    """Another download of the same pull failed: stop this one."""


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


def resolve_manifest(source: ImageSource) -> tuple[str, Descriptor, bytes]:
    """The image manifest for this host, following an index if there is one.

    Returns the digest the reference resolved to (the index's, for a
    multi-platform image: that is what cosign and skopeo sign, and what the
    trust policy checks), then this host's manifest and its bytes. The chain
    stays verified: the index bytes match the top digest, and the manifest
    matches the index entry."""
    what = f"image {source.describe()}"
    descriptor = source.resolve()
    top = descriptor.digest
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
    return top, descriptor, raw


# -- locks ----------------------------------------------------------------


@contextlib.contextmanager
def _flock(path: Path, operation: int) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def pulling(store: Store) -> Iterator[int]:
    """Take part in pulling: a shared lock that every pull holds.

    A pull that finds no other (the exclusive lock is free) first removes
    what crashed pulls left in ``incoming/``; with others running, their
    files there are in use.
    """
    store.create()
    # Exclusive first, then shared; never shared then exclusive: flock(2)
    # converts a lock by dropping it first, so a failed upgrade would leave
    # this pull holding nothing, and the next pull would think itself alone
    # and clean incoming/ under it. (Going down from exclusive drops it too,
    # but then nothing of ours is in incoming/ yet.)
    fd = os.open(
        store.pulls_lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
    )
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)  # others are pulling
        else:
            store.clean_incoming()
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _blob_lock(store: Store, digest: str) -> Iterator[None]:
    """An exclusive lock on one blob, its lock file removed on release.

    Removing a lock file races with a process that opened it but has not
    locked it yet; that process sees that the file it locked is no longer
    the one at the path and tries again.
    """
    path = store.incoming / f"lock-{digest.removeprefix('sha256:')}"
    while True:
        with _flock(path, fcntl.LOCK_EX) as fd:
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                continue
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            return


def _roll_back(store: Store, pulls_fd: int, added: list[str]) -> None:
    """Remove the blobs a failed pull added, if no other pull is running."""
    try:
        # A failed upgrade drops our shared lock (see pulling()): harmless
        # here, this pull is over.
        fcntl.flock(pulls_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return
    for digest in added:
        with contextlib.suppress(FileNotFoundError):
            store.blob_path(digest).unlink()


def _commit(
    store: Store,
    digest: str,
    chunks: Callable[[], Iterable[bytes]],
    size: int | None,
    what: str,
) -> bool:
    """Commit blob DIGEST unless it is there; True if this call downloaded it."""
    if store.has_blob(digest):
        return False
    with _blob_lock(store, digest):
        if store.has_blob(digest):  # another pull fetched it while we waited
            return False
        try:
            store.commit_blob(digest, chunks(), size)
        except StoreError as err:
            raise ImageError(f"{what}: {str(err).removeprefix(f'blob {digest}: ')}") from None
    return True


def _tracked(
    chunks: Iterable[bytes],
    digest: str,
    total: int,
    progress: Progress | None,
    cancel: threading.Event,
) -> Iterator[bytes]:
    done = 0
    for chunk in chunks:
        if cancel.is_set():
            raise _Cancelled
        done += len(chunk)
        if progress is not None:
            progress.update(digest, done, total)
        yield chunk


def pull(
    source: ImageSource,
    store: Store,
    reference: str,
    verify: Verifier | None = None,
    *,
    progress: Progress | None = None,
    jobs: int = DEFAULT_JOBS,
) -> ImageRecord:
    what = f"image {source.describe()}"
    top_digest, descriptor, raw_manifest = resolve_manifest(source)
    verification = verify(reference, top_digest) if verify else {"policy": "none"}
    manifest = parse_manifest(raw_manifest, f"{what}: manifest")
    cancel = threading.Event()
    added: list[str] = []

    def fetch_config() -> tuple[bytes, ImageConfig]:
        raw = _collect(source, manifest.config, MAX_DOCUMENT_SIZE)
        _check_digest(raw, manifest.config.digest, f"{what}: config")
        parsed = parse_config(raw, f"{what}: config")
        if len(parsed.diff_ids) != len(manifest.layers):
            raise ImageError(
                f"{what}: the config lists {len(parsed.diff_ids)} diff ids "
                f"for {len(manifest.layers)} layers"
            )
        return raw, parsed

    def fetch_layer(layer: Descriptor) -> None:
        if _commit(
            store,
            layer.digest,
            lambda: _tracked(source.fetch_blob(layer), layer.digest, layer.size, progress, cancel),
            layer.size,
            f"{what}: layer {layer.digest}",
        ):
            added.append(layer.digest)  # list.append is atomic under the GIL
        if progress is not None:
            progress.update(layer.digest, layer.size, layer.size)

    with pulling(store) as pulls_fd:
        try:
            unique = list({layer.digest: layer for layer in manifest.layers}.values())
            # The config comes with the layers, not before them: with a
            # registry that takes a while per request (auth, latency), one
            # round trip less.
            with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(unique) + 1))) as pool:
                config_future = pool.submit(fetch_config)
                futures: list[Future[Any]] = [config_future]
                futures += [pool.submit(fetch_layer, layer) for layer in unique]
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
                if any(f.exception() is not None for f in finished):
                    cancel.set()
                errors = [e for f in futures if (e := f.exception()) is not None]
            if errors:
                raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])
            raw_config, config = config_future.result()
            if _commit(store, manifest.config.digest, lambda: (raw_config,), None, what):
                added.append(manifest.config.digest)
            if _commit(store, descriptor.digest, lambda: (raw_manifest,), None, what):
                added.append(descriptor.digest)
        except BaseException:
            _roll_back(store, pulls_fd, added)
            raise
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
        with store.locked():
            store.put_image(record)
    return record
