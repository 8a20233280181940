"""An OCI image layout on disk (``oci:/path[:tag]``) as an image source.

The layout is as untrusted as a registry: index.json is size-limited, the
tag is looked up by the ``org.opencontainers.image.ref.name`` annotation, and
every blob is verified by ``pull`` before it is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from podman_sd.errors import ImageError
from podman_sd.image.reference import ImageRef
from podman_sd.image.spec import MAX_DOCUMENT_SIZE, Descriptor, parse_index
from podman_sd.image.store import CHUNK

REF_NAME = "org.opencontainers.image.ref.name"


class OCILayoutSource:
    def __init__(self, ref: ImageRef) -> None:
        self.ref = ref
        self.root = Path(ref.path)

    def describe(self) -> str:
        return str(self.ref)

    def _read_limited(self, path: Path) -> bytes:
        try:
            with path.open("rb") as file:
                data = file.read(MAX_DOCUMENT_SIZE + 1)
        except FileNotFoundError:
            raise ImageError(f"image {self.ref}: {path} does not exist") from None
        except OSError as err:
            raise ImageError(f"image {self.ref}: cannot read {path}: {err.strerror}") from None
        if len(data) > MAX_DOCUMENT_SIZE:
            raise ImageError(f"image {self.ref}: {path} is larger than {MAX_DOCUMENT_SIZE} bytes")
        return data

    def resolve(self) -> Descriptor:
        layout = self._read_limited(self.root / "oci-layout")
        try:
            version = json.loads(layout).get("imageLayoutVersion")
        except (ValueError, AttributeError):
            version = None
        if version != "1.0.0":
            raise ImageError(f"image {self.ref}: {self.root} is not an OCI image layout")
        index = parse_index(self._read_limited(self.root / "index.json"), f"{self.root}/index.json")
        if self.ref.tag is None:
            if len(index.manifests) != 1:
                raise ImageError(
                    f"image {self.ref}: the layout holds {len(index.manifests)} images; name one with :TAG"
                )
            return index.manifests[0]
        for entry in index.manifests:
            if entry.annotation(REF_NAME) == self.ref.tag:
                return entry
        tags = sorted(filter(None, (e.annotation(REF_NAME) for e in index.manifests)))
        raise ImageError(
            f"image {self.ref}: no tag {self.ref.tag!r} in the layout (tags: {', '.join(tags) or 'none'})"
        )

    def _blob(self, descriptor: Descriptor) -> Path:
        return self.root / "blobs" / "sha256" / descriptor.digest.removeprefix("sha256:")

    def fetch_manifest(self, descriptor: Descriptor) -> bytes:
        return self._read_limited(self._blob(descriptor))

    def fetch_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        try:
            with self._blob(descriptor).open("rb") as blob:
                while chunk := blob.read(CHUNK):
                    yield chunk
        except FileNotFoundError:
            raise ImageError(
                f"image {self.ref}: blob {descriptor.digest} is missing from the layout"
            ) from None
