"""The OCI image spec and Docker schema 2 documents, parsed into dataclasses.

Only what podman-sd uses is kept; unknown fields are ignored, as the spec
asks of readers. Every parse error is an ImageError naming the document.
"""

from __future__ import annotations

import json
import platform
import posixpath
from dataclasses import dataclass
from typing import Any

from podman_sd.errors import ImageError
from podman_sd.image.reference import validate_digest

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

MANIFEST_TYPES = frozenset({MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST})
INDEX_TYPES = frozenset({MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST})
CONFIG_TYPES = frozenset({MEDIA_OCI_CONFIG, MEDIA_DOCKER_CONFIG})
LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)

# A manifest or config bigger than this is hostile or broken: real ones are
# a few KiB. containers/image uses 4 MiB for manifests too.
MAX_DOCUMENT_SIZE = 4 * 1024 * 1024

_GO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def host_platform() -> tuple[str, str]:
    """(os, architecture) of this host in OCI (GOOS/GOARCH) terms."""
    machine = platform.machine()
    return "linux", _GO_ARCH.get(machine, machine)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform_os: str | None = None
    platform_arch: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]

    def for_platform(self, os_name: str, arch: str) -> Descriptor | None:
        for entry in self.manifests:
            if entry.platform_os == os_name and entry.platform_arch == arch:
                return entry
        return None


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    working_dir: str
    user: str
    stop_signal: str | None
    diff_ids: tuple[str, ...]
    os: str
    architecture: str
    # Volumes (the Dockerfile's VOLUME): absolute, normalized, sorted paths.
    volumes: tuple[str, ...] = ()


def _load_json(raw: bytes, what: str) -> dict[str, Any]:
    if len(raw) > MAX_DOCUMENT_SIZE:
        raise ImageError(
            f"{what}: {len(raw)} bytes is larger than the limit of {MAX_DOCUMENT_SIZE}"
        )
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ImageError(f"{what}: not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: expected a JSON object")
    return doc


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"{what}: expected a list of strings")
    return tuple(value)


def _volumes(value: Any, what: str) -> tuple[str, ...]:
    """The paths of a config's Volumes, an object whose keys are the paths
    (the values are empty objects). A relative path is taken from the root,
    as CRI-O and containerd join it to the root file system."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ImageError(f"{what}: expected an object whose keys are paths")
    paths = set()
    for key in value:
        if "\0" in key:
            raise ImageError(f"{what}: {key!r} is not a path")
        path = posixpath.normpath("/" + key.lstrip("/"))
        if path != "/":
            paths.add(path)
    return tuple(sorted(paths))


def _descriptor(value: Any, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ImageError(f"{what}: expected a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise ImageError(f"{what}: a descriptor needs mediaType and digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{what}: size must be a non-negative integer")
    validate_digest(digest, what)
    plat = value.get("platform") or {}
    annotations = value.get("annotations") or {}
    if not isinstance(plat, dict) or not isinstance(annotations, dict):
        raise ImageError(f"{what}: platform and annotations must be objects")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform_os=plat.get("os"),
        platform_arch=plat.get("architecture"),
        annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
    )


def document_media_type(raw: bytes, what: str, declared: str | None = None) -> str:
    """The media type of a manifest or index, from the document or its descriptor."""
    doc = _load_json(raw, what)
    media_type = doc.get("mediaType") or declared
    if media_type is None and "manifests" in doc:
        media_type = MEDIA_OCI_INDEX
    elif media_type is None and "layers" in doc:
        media_type = MEDIA_OCI_MANIFEST
    if media_type not in MANIFEST_TYPES | INDEX_TYPES:
        raise ImageError(f"{what}: unsupported media type {media_type!r}")
    return str(media_type)


def parse_manifest(raw: bytes, what: str) -> Manifest:
    doc = _load_json(raw, what)
    media_type = document_media_type(raw, what)
    if media_type not in MANIFEST_TYPES:
        raise ImageError(f"{what}: expected an image manifest, got {media_type}")
    config = _descriptor(doc.get("config"), f"{what}: config")
    if config.media_type not in CONFIG_TYPES:
        raise ImageError(f"{what}: unsupported config media type {config.media_type!r}")
    layers_raw = doc.get("layers")
    if not isinstance(layers_raw, list):
        raise ImageError(f"{what}: layers must be a list")
    layers = tuple(_descriptor(entry, f"{what}: layers[{i}]") for i, entry in enumerate(layers_raw))
    for i, layer in enumerate(layers):
        if layer.media_type not in LAYER_TYPES:
            raise ImageError(
                f"{what}: layers[{i}]: unsupported layer media type {layer.media_type!r}"
            )
    return Manifest(media_type, config, layers)


def parse_index(raw: bytes, what: str) -> Index:
    doc = _load_json(raw, what)
    media_type = document_media_type(raw, what)
    if media_type not in INDEX_TYPES:
        raise ImageError(f"{what}: expected an image index, got {media_type}")
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise ImageError(f"{what}: manifests must be a list")
    return Index(
        media_type,
        tuple(_descriptor(entry, f"{what}: manifests[{i}]") for i, entry in enumerate(entries)),
    )


def parse_config(raw: bytes, what: str) -> ImageConfig:
    doc = _load_json(raw, what)
    config = doc.get("config") or {}
    rootfs = doc.get("rootfs") or {}
    if not isinstance(config, dict) or not isinstance(rootfs, dict):
        raise ImageError(f"{what}: config and rootfs must be objects")
    diff_ids = _str_list(rootfs.get("diff_ids"), f"{what}: rootfs.diff_ids")
    for diff_id in diff_ids:
        validate_digest(diff_id, f"{what}: rootfs.diff_ids")
    return ImageConfig(
        entrypoint=_str_list(config.get("Entrypoint"), f"{what}: Entrypoint"),
        cmd=_str_list(config.get("Cmd"), f"{what}: Cmd"),
        env=_str_list(config.get("Env"), f"{what}: Env"),
        working_dir=str(config.get("WorkingDir") or ""),
        user=str(config.get("User") or ""),
        stop_signal=config.get("StopSignal") or None,
        diff_ids=diff_ids,
        os=str(doc.get("os") or ""),
        architecture=str(doc.get("architecture") or ""),
        volumes=_volumes(config.get("Volumes"), f"{what}: Volumes"),
    )
