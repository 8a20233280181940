"""The content-addressed image store under /var/lib/podman-sd.

    blobs/sha256/HEX          verified blobs, named by their digest
    blobs/incoming/           blobs being written; never read as content (beside
                              sha256/: a commit is a rename within blobs/)
    layers/sha256/HEX/        unpacked layers (overlay format), named by diff id
    images.json               reference -> image record, replaced atomically
    store.lock                flock(2) serialising writers
    pulls.lock                shared by every running pull, exclusive for prune

A blob reaches ``blobs/`` only by a rename after its digest matched, so
nothing unverified is ever visible; a crash leaves at most a stray file in
``incoming/``, which the next writer removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from podman_sd.errors import StoreError
from podman_sd.image.reference import validate_digest

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LayerRecord:
    digest: str
    diff_id: str
    media_type: str
    size: int


@dataclass(frozen=True)
class ImageRecord:
    reference: str
    manifest_digest: str
    config_digest: str
    layers: tuple[LayerRecord, ...]
    # How the image was verified (trust policy decision), for `image inspect`.
    verification: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImageRecord:
        return cls(
            reference=doc["reference"],
            manifest_digest=doc["manifest_digest"],
            config_digest=doc["config_digest"],
            layers=tuple(LayerRecord(**layer) for layer in doc["layers"]),
            verification=dict(doc.get("verification") or {}),
        )


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI image spec's ChainIDs: layer N's identity with all below it."""
    chains: list[str] = []
    for diff_id in diff_ids:
        validate_digest(diff_id, "layer diff id")
        if not chains:
            chains.append(diff_id)
        else:
            text = f"{chains[-1]} {diff_id}".encode()
            chains.append(f"sha256:{hashlib.sha256(text).hexdigest()}")
    return chains


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write DATA to PATH so that readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.layers = root / "layers" / "sha256"
        self.incoming = root / "blobs" / "incoming"
        self.index_path = root / "images.json"
        self.pulls_lock_path = root / "pulls.lock"

    def create(self) -> Store:
        for directory in (self.blobs, self.layers, self.incoming):
            directory.mkdir(parents=True, exist_ok=True)
        return self

    @contextlib.contextmanager
    def _flock(self, path: Path) -> Iterator[None]:
        self.create()
        # O_NOFOLLOW: the unprivileged fetch helper can write in the state
        # directory, so it could plant a symlink for root to follow.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store's writer lock (blocks while another writer holds it)."""
        return self._flock(self.root / "store.lock")

    def no_pulls(self) -> contextlib.AbstractContextManager[None]:
        """Wait until no pull runs, and keep new ones waiting (for prune: the
        blobs a running pull has committed are not in any image record yet)."""
        return self._flock(self.pulls_lock_path)

    def layers_locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lock on unpacking, in root's own layers/ directory: the
        unprivileged helper can neither hold nor replace it."""
        return self._flock(self.layers / ".lock")

    # -- blobs --------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        validate_digest(digest, "blob")
        return self.blobs / digest.removeprefix("sha256:")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def open_blob(self, digest: str) -> BinaryIO:
        """A blob for streaming (the caller verifies while reading)."""
        path = self.blob_path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is not in the store ({self.root})") from None
        except OSError as err:
            raise StoreError(f"blob {digest}: cannot open {path}: {err.strerror}") from None
        return os.fdopen(fd, "rb")

    def read_blob(self, digest: str, limit: int | None = None) -> bytes:
        with self.open_blob(digest) as blob:
            data = blob.read() if limit is None else blob.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise StoreError(f"blob {digest} is larger than {limit} bytes")
        return data

    def read_verified_blob(self, digest: str, limit: int) -> bytes:
        """A small blob, re-hashed: root must not trust what the helper's files hold."""
        data = self.read_blob(digest, limit)
        actual = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if actual != digest:
            raise StoreError(f"blob {digest} in {self.root} is corrupt (content has {actual})")
        return data

    def commit_blob(self, digest: str, chunks: Iterable[bytes], size: int | None = None) -> Path:
        """Write CHUNKS as blob DIGEST; committed only if the content matches."""
        final = self.blob_path(digest)
        if final.is_file():
            return final
        self.create()
        fd, tmp = tempfile.mkstemp(prefix="blob-", dir=self.incoming)
        hasher = hashlib.sha256()
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    written += len(chunk)
                    if size is not None and written > size:
                        raise StoreError(
                            f"blob {digest}: more data than the {size} bytes announced"
                        )
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = f"sha256:{hasher.hexdigest()}"
            if actual != digest:
                raise StoreError(f"blob {digest}: content has digest {actual}; not stored")
            if size is not None and written != size:
                raise StoreError(f"blob {digest}: {written} bytes, expected {size}; not stored")
            os.chmod(tmp, 0o644)
            os.rename(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        fsync_dir(final.parent)
        return final

    def clean_incoming(self) -> None:
        """Remove what crashed writers left; call with the lock held."""
        if self.incoming.is_dir():
            for leftover in self.incoming.iterdir():
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    leftover.unlink()

    # -- image index --------------------------------------------------------

    def images(self) -> dict[str, ImageRecord]:
        try:
            doc = json.loads(self.index_path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as err:
            raise StoreError(f"{self.index_path}: corrupt image index ({err})") from None
        try:
            return {ref: ImageRecord.from_json(rec) for ref, rec in doc.get("images", {}).items()}
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            # The helper writes it: valid JSON is not yet a valid index.
            what = f"{type(err).__name__}: {err}"
            raise StoreError(f"{self.index_path}: corrupt image index ({what})") from None

    def image(self, reference: str) -> ImageRecord | None:
        return self.images().get(reference)

    def _write_index(self, images: dict[str, ImageRecord]) -> None:
        doc = {"images": {ref: rec.to_json() for ref, rec in sorted(images.items())}}
        atomic_write(self.index_path, json.dumps(doc, indent=1).encode())

    def put_image(self, record: ImageRecord) -> None:
        """Record an image whose blobs are all committed; call with the lock held."""
        missing = [
            d
            for d in (
                record.manifest_digest,
                record.config_digest,
                *(lay.digest for lay in record.layers),
            )
            if not self.has_blob(d)
        ]
        if missing:
            raise StoreError(f"image {record.reference}: blobs missing from the store: {missing}")
        images = self.images()
        images[record.reference] = record
        self._write_index(images)

    def remove_image(self, reference: str) -> bool:
        images = self.images()
        if images.pop(reference, None) is None:
            return False
        self._write_index(images)
        return True

    # -- unpacked layers ----------------------------------------------------

    def layer_dirs(self, image: ImageRecord) -> tuple[Path, ...]:
        """Where the image's layers are unpacked, bottom first.

        Named by chain id, not diff id: a layer whose archive leaves out
        parent directories takes their metadata from the layers below it, so
        the same layer may unpack differently on another base. Layers shared
        with the same base below (the case that matters) still share a
        directory."""
        return tuple(
            self.layers / chain.removeprefix("sha256:")
            for chain in chain_ids([layer.diff_id for layer in image.layers])
        )
