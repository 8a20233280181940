"""An OCI image layout in a tar file (``oci-archive:/path.tar[:tag]``).

Nothing is extracted: the archive's member table is read once, and
``index.json``, ``oci-layout`` and ``blobs/sha256/HEX`` are read straight from
their offsets in the tar. So no member name (``..``, absolute paths),
symlink or hard link can make us write or read anything outside the
archive; members that are not regular files are ignored. As with a layout,
every blob is verified by ``pull``.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from podman_sd.errors import ImageError
from podman_sd.fetch.oci_layout import OCILayoutSource
from podman_sd.image.reference import ImageRef
from podman_sd.image.spec import MAX_DOCUMENT_SIZE, Descriptor
from podman_sd.image.store import CHUNK

# A layout has a few files per image; this many members is not one.
MAX_MEMBERS = 100_000


def _member_name(name: str) -> str | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return None
    return path.as_posix().removeprefix("./")


def scan_archive(archive: Path, what: str) -> dict[str, tuple[int, int]]:
    """Regular files in ARCHIVE: name -> (offset of the data, size)."""
    members: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(archive, "r:") as tar:
            for count, info in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise ImageError(f"{what}: more than {MAX_MEMBERS} members in {archive}")
                name = _member_name(info.name)
                if name is not None and info.isreg() and not info.issparse():
                    members[name] = (info.offset_data, info.size)
    except FileNotFoundError:
        raise ImageError(f"{what}: {archive} does not exist") from None
    except tarfile.ReadError as err:
        raise ImageError(f"{what}: {archive} is not an uncompressed tar archive ({err})") from None
    except OSError as err:
        raise ImageError(f"{what}: cannot read {archive}: {err.strerror}") from None
    return members


class OCIArchiveSource(OCILayoutSource):
    def __init__(self, ref: ImageRef) -> None:
        super().__init__(ref)
        self._members = scan_archive(self.root, f"image {ref}")

    def _member(self, path: Path) -> tuple[str, int, int]:
        name = path.relative_to(self.root).as_posix()
        try:
            offset, size = self._members[name]
        except KeyError:
            raise ImageError(f"image {self.ref}: {name} is missing from the archive") from None
        return name, offset, size

    def _read_limited(self, path: Path) -> bytes:
        name, offset, size = self._member(path)
        if size > MAX_DOCUMENT_SIZE:
            raise ImageError(f"image {self.ref}: {name} is larger than {MAX_DOCUMENT_SIZE} bytes")
        with self.root.open("rb") as archive:
            archive.seek(offset)
            data = archive.read(size)
        if len(data) != size:
            raise ImageError(f"image {self.ref}: the archive ends inside {name}")
        return data

    def fetch_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        name, offset, size = self._member(self._blob(descriptor))
        with self.root.open("rb") as archive:
            archive.seek(offset)
            left = size
            while left:
                chunk = archive.read(min(CHUNK, left))
                if not chunk:
                    raise ImageError(f"image {self.ref}: the archive ends inside {name}")
                left -= len(chunk)
                yield chunk
