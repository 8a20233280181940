"""What a place that images come from must provide to ``pull``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from podman_sd.image.spec import Descriptor


class ImageSource(Protocol):
    def describe(self) -> str:
        """The reference as the user wrote it, for messages."""

    def resolve(self) -> Descriptor:
        """The descriptor (digest, media type) the reference points at."""

    def fetch_manifest(self, descriptor: Descriptor) -> bytes:
        """The manifest or index DESCRIPTOR names (unverified bytes)."""

    def fetch_blob(self, descriptor: Descriptor) -> Iterator[bytes]:
        """The blob's bytes as chunks (unverified)."""
