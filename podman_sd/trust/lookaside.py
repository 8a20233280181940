"""Where GPG simple signatures live: containers-registries.d(5) lookaside stores.

``/etc/podman-sd/registries.d/*.yaml`` (or, if that folder does not exist,
``/etc/containers/registries.d/*.yaml``) maps docker scopes to a base URL::

    default-docker:
      lookaside: file:///var/lib/containers/sigstore
    docker:
      registry.example.com/ns:
        lookaside: https://sigs.example.com/sigstore

The signatures of REGISTRY/REPO at digest sha256:HEX are then
``BASE/REPO@sha256=HEX/signature-1``, ``signature-2``, … up to the first one
missing (containers/image's layout, so skopeo and podman can write them).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from podman_sd import paths
from podman_sd.errors import PolicyError, TrustError
from podman_sd.image.reference import ImageRef, Transport
from podman_sd.trust.policy import scope_candidates
from podman_sd.trust.source import SigstoreSignature

CONTAINERS_REGISTRIES_D = Path("/etc/containers/registries.d")
MAX_SIGNATURE_SIZE = 4 * 1024 * 1024
MAX_SIGNATURES = 128
TIMEOUT = 30.0

# Keys of a registries.d entry; *-staging are where signers write, we only read.
_ENTRY_KEYS = frozenset(
    {"lookaside", "lookaside-staging", "sigstore", "sigstore-staging", "use-sigstore-attachments"}
)


@dataclass(frozen=True)
class Lookaside:
    """The lookaside base URL that applies to one scope, and where it was configured."""

    scope: str  # "" for default-docker
    url: str
    source: str


@dataclass(frozen=True)
class RegistriesD:
    default_docker: Lookaside | None = None
    scopes: tuple[Lookaside, ...] = ()

    def lookaside_for(self, ref: ImageRef) -> Lookaside | None:
        if ref.transport is not Transport.DOCKER:
            return None
        by_scope = {entry.scope: entry for entry in self.scopes}
        for candidate in scope_candidates(ref):
            if candidate in by_scope:
                return by_scope[candidate]
        return self.default_docker


def registries_d_dirs() -> list[Path]:
    ours = paths.config_dir() / "registries.d"
    return [ours] if ours.is_dir() else [CONTAINERS_REGISTRIES_D]


def load_registries_d(dirs: Sequence[Path] | None = None) -> RegistriesD:
    default: Lookaside | None = None
    default_source = ""
    scopes: dict[str, Lookaside] = {}
    for folder in registries_d_dirs() if dirs is None else dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            doc = _read_yaml(path)
            for key in doc:
                if key not in ("default-docker", "docker"):
                    raise PolicyError(f"{path}: {key}: unknown key (default-docker, docker)")
            if doc.get("default-docker") is not None:
                if default_source:
                    raise PolicyError(
                        f"{path}: default-docker: already configured in {default_source}"
                    )
                default_source = str(path)
                default = _entry(path, "", doc["default-docker"], "default-docker")
            docker = doc.get("docker") or {}
            if not isinstance(docker, dict):
                raise PolicyError(f"{path}: docker: must be a mapping of scopes")
            for scope, value in docker.items():
                field = f"docker.{scope}"
                if not isinstance(scope, str) or not scope:
                    raise PolicyError(f"{path}: {field}: not a scope")
                if scope in scopes:
                    raise PolicyError(
                        f"{path}: {field}: already configured in {scopes[scope].source}"
                    )
                entry = _entry(path, scope, value, field)
                if entry is not None:
                    scopes[scope] = entry
    return RegistriesD(default, tuple(scopes.values()))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_bytes())
    except OSError as err:
        raise PolicyError(f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise PolicyError(f"{path}: not valid YAML: {err}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}: must be a mapping (default-docker, docker)")
    return doc


def _entry(path: Path, scope: str, value: Any, field: str) -> Lookaside | None:
    if not isinstance(value, dict):
        raise PolicyError(f"{path}: {field}: must be a mapping (lookaside: URL)")
    for key in value:
        if key not in _ENTRY_KEYS:
            raise PolicyError(
                f"{path}: {field}.{key}: unknown key (allowed: {', '.join(sorted(_ENTRY_KEYS))})"
            )
    # "sigstore" is the old name of "lookaside" (containers-registries.d(5)).
    key = "lookaside" if "lookaside" in value else "sigstore"
    url = value.get(key)
    if url is None:
        return None
    if not isinstance(url, str):
        raise PolicyError(f"{path}: {field}.{key}: must be a URL")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("file", "http", "https") or (
        parsed.scheme == "file" and not parsed.path.startswith("/")
    ):
        raise PolicyError(
            f"{path}: {field}.{key}: {url!r} is not a file:///PATH, http:// or https:// URL"
        )
    return Lookaside(scope, url, str(path))


def signature_url(base: str, ref: ImageRef, manifest_digest: str, index: int) -> str:
    """The URL of signature INDEX (from 1) of REF at MANIFEST_DIGEST."""
    algorithm, _, hex_digest = manifest_digest.partition(":")
    # The repository path without the registry, as containers/image lays it out.
    return f"{base.rstrip('/')}/{ref.repository}@{algorithm}={hex_digest}/signature-{index}"


class LookasideSignatures:
    """Reads simple signatures from the lookaside store configured for a reference."""

    def __init__(
        self,
        config: RegistriesD,
        *,
        tls_verify: bool | str = True,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        # Passed with each request: REQUESTS_CA_BUNDLE would override a
        # Session.verify CA path, never a per-request one.
        self.tls_verify = tls_verify
        self.session = session

    def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
        return []

    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        lookaside = self.config.lookaside_for(reference)
        if lookaside is None:
            return []
        signatures = []
        for index in range(1, MAX_SIGNATURES + 1):
            url = signature_url(lookaside.url, reference, manifest_digest, index)
            data = self._read(url)
            if data is None:
                break
            signatures.append(data)
        return signatures

    def _read(self, url: str) -> bytes | None:
        """The bytes at URL, or None if there is nothing there."""
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme == "file":
            path = urllib.parse.unquote(parsed.path)
            try:
                with open(path, "rb") as f:
                    data = f.read(MAX_SIGNATURE_SIZE + 1)
            except FileNotFoundError:
                return None
            except OSError as err:
                raise TrustError(f"cannot read the signature {path}: {err.strerror}") from None
            return _bounded(data, url)
        session = self.session or requests.Session()
        try:
            with session.get(url, stream=True, timeout=TIMEOUT, verify=self.tls_verify) as resp:
                if resp.status_code == 404:
                    return None
                if resp.status_code != 200:
                    raise TrustError(f"reading the signature {url}: HTTP {resp.status_code}")
                buffer = bytearray()
                for chunk in resp.iter_content(64 * 1024):
                    buffer += chunk
                    if len(buffer) > MAX_SIGNATURE_SIZE:
                        break
                return _bounded(bytes(buffer), url)
        except requests.RequestException as err:
            raise TrustError(f"reading the signature {url}: {err}") from None
        finally:
            if self.session is None:
                session.close()


def _bounded(data: bytes, url: str) -> bytes:
    if len(data) > MAX_SIGNATURE_SIZE:
        raise TrustError(f"the signature {url} is larger than {MAX_SIGNATURE_SIZE} bytes")
    return data
