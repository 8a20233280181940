"""Image references as users write them for podman.

``registry/repo:tag`` and ``registry/repo@sha256:HEX`` (the ``docker``
transport), ``oci:/path/to/layout[:tag]`` and ``oci-archive:/path.tar[:tag]``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from podman_sd.errors import ImageError

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REPO_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")

DEFAULT_REGISTRY = "docker.io"


class Transport(enum.Enum):
    DOCKER = "docker"
    OCI = "oci"
    OCI_ARCHIVE = "oci-archive"


@dataclass(frozen=True)
class ImageRef:
    transport: Transport
    # docker: registry host[:port] and repository path; oci*: the layout path.
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        if self.transport is not Transport.DOCKER:
            return f"{self.transport.value}:{self.repository}" + (
                f":{self.tag}" if self.tag else ""
            )
        name = f"{self.registry}/{self.repository}"
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    @property
    def path(self) -> str:
        """The file system path of an oci or oci-archive reference."""
        return self.repository


def validate_digest(digest: str, where: str) -> str:
    if not DIGEST_RE.match(digest):
        raise ImageError(f"{where}: {digest!r} is not a sha256 digest (sha256: and 64 hex digits)")
    return digest


def parse_reference(text: str) -> ImageRef:
    """Parse an image reference; raises ImageError naming what is wrong."""
    for transport in (Transport.OCI, Transport.OCI_ARCHIVE):
        prefix = f"{transport.value}:"
        if text.startswith(prefix):
            return _parse_local(transport, text[len(prefix) :], text)
    if text.startswith("docker://"):
        text = text[len("docker://") :]
    return _parse_docker(text)


def _parse_local(transport: Transport, rest: str, original: str) -> ImageRef:
    path, _, tag = rest.partition(":")
    if not path.startswith("/"):
        raise ImageError(f"image {original!r}: the {transport.value} path must be absolute")
    if tag and not _TAG_RE.match(tag):
        raise ImageError(f"image {original!r}: {tag!r} is not a valid tag")
    return ImageRef(transport, "", path, tag or None, None)


def _parse_docker(text: str) -> ImageRef:
    name, _, digest = text.partition("@")
    if digest:
        validate_digest(digest, f"image {text!r}")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not _TAG_RE.match(tag):
            raise ImageError(f"image {text!r}: {tag!r} is not a valid tag")
    first, _, remainder = name.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = DEFAULT_REGISTRY, name
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if not repository or not all(_REPO_COMPONENT_RE.match(c) for c in repository.split("/")):
        if text.startswith(("/", "./")):  # a path, as `podman load -i` takes one
            raise ImageError(
                f"image {text!r}: a path needs its transport: oci-archive:{text} for "
                f"an OCI archive, oci:{text}:TAG for an OCI layout"
            )
        raise ImageError(
            f"image {text!r}: {repository!r} is not a valid repository name "
            "(lowercase letters, digits and separators)"
        )
    if tag is None and not digest:
        tag = "latest"
    return ImageRef(Transport.DOCKER, registry, repository, tag, digest or None)
