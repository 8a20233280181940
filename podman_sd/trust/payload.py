"""Simple-signing payloads: the claims a signature makes, and whether they fit.

Both formats sign the same JSON document (containers-signature(5)):
``{"critical": {"type": …, "image": {"docker-manifest-digest": …},
"identity": {"docker-reference": …}}, "optional": {…}}``. Its ``critical``
part is parsed paranoidly, as containers/image does: an unknown field there
could carry a restriction we would silently ignore.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from podman_sd.errors import ImageError
from podman_sd.image.reference import DIGEST_RE, ImageRef, Transport, parse_reference
from podman_sd.trust.policy import IdentityType, SignedIdentity, no_duplicate_keys

SIMPLE_SIGNING_TYPE = "atomic container signature"
COSIGN_TYPE = "cosign container image signature"


class PayloadError(Exception):
    """A signature's payload is malformed or does not fit the image (a reason, not a refusal)."""


@dataclass(frozen=True)
class DockerName:
    """A normalized docker reference; unlike ImageRef, it may be name-only."""

    name: str  # registry/repository
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return (
            self.name
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )

    @property
    def name_only(self) -> bool:
        return self.tag is None and self.digest is None


def parse_docker_name(text: str) -> DockerName:
    """Parse and normalize a docker reference, keeping it name-only if it is."""
    if "://" in text or text.startswith(("oci:", "oci-archive:")):
        raise PayloadError(f"{text!r} is not a docker reference")
    try:
        ref = parse_reference(text)
    except ImageError as err:
        raise PayloadError(str(err)) from None
    # parse_reference adds the default tag; a signed identity must say it.
    has_tag = ":" in text.partition("@")[0].rpartition("/")[2]
    return DockerName(f"{ref.registry}/{ref.repository}", ref.tag if has_tag else None, ref.digest)


def intended_name(ref: ImageRef) -> DockerName | None:
    if ref.transport is not Transport.DOCKER:
        return None
    return DockerName(f"{ref.registry}/{ref.repository}", ref.tag, ref.digest)


@dataclass(frozen=True)
class Claims:
    type: str
    manifest_digest: str
    docker_reference: str
    creator: str | None = None
    timestamp: int | None = None


def _exact_object(value: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} is not a JSON object")
    if set(value) != keys:
        raise PayloadError(f"{where} has fields {sorted(value)}, expected {sorted(keys)}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where} is not a string")
    return value


def parse_claims(data: bytes, expected_type: str) -> Claims:
    try:
        doc = json.loads(data, object_pairs_hook=no_duplicate_keys)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("the signed payload is not a JSON signature document") from None
    if not isinstance(doc, dict) or "critical" not in doc or set(doc) - {"critical", "optional"}:
        raise PayloadError("the signed payload is not a signature document (critical, optional)")
    critical = _exact_object(doc["critical"], {"type", "image", "identity"}, "critical")
    kind = _string(critical["type"], "critical.type")
    if kind != expected_type:
        raise PayloadError(f"critical.type is {kind!r}, expected {expected_type!r}")
    image = _exact_object(critical["image"], {"docker-manifest-digest"}, "critical.image")
    digest = _string(image["docker-manifest-digest"], "critical.image.docker-manifest-digest")
    identity = _exact_object(critical["identity"], {"docker-reference"}, "critical.identity")
    reference = _string(identity["docker-reference"], "critical.identity.docker-reference")
    optional = doc.get("optional")
    creator = timestamp = None
    if isinstance(optional, dict):
        if isinstance(optional.get("creator"), str):
            creator = optional["creator"]
        if isinstance(optional.get("timestamp"), int):
            timestamp = optional["timestamp"]
    elif optional is not None:
        raise PayloadError("optional is not a JSON object")
    return Claims(kind, digest, reference, creator, timestamp)


def check_claims(
    claims: Claims, ref: ImageRef, manifest_digest: str, identity: SignedIdentity
) -> None:
    """Raise PayloadError unless the claims are about this image under IDENTITY."""
    if not DIGEST_RE.match(claims.manifest_digest) or claims.manifest_digest != manifest_digest:
        raise PayloadError(
            f"it signs manifest {claims.manifest_digest}, not the pulled {manifest_digest}"
        )
    signed = parse_docker_name(claims.docker_reference)
    if not identity_matches(identity, intended_name(ref), signed):
        raise PayloadError(
            f"it signs the identity {claims.docker_reference}, which does not match "
            f"{ref} under {identity.type.value}"
        )


def identity_matches(
    identity: SignedIdentity, intended: DockerName | None, signed: DockerName
) -> bool:
    """containers-policy.json(5) signedIdentity, as containers/image implements it."""
    kind = identity.type
    if kind is IdentityType.EXACT_REFERENCE:
        assert identity.docker_reference is not None
        want = parse_docker_name(identity.docker_reference)
        return not signed.name_only and str(signed) == str(want)
    if kind is IdentityType.EXACT_REPOSITORY:
        assert identity.docker_repository is not None
        return signed.name == parse_docker_name(identity.docker_repository).name
    if intended is None:
        # Only the exact* types can match an image that has no docker identity.
        return False
    if kind is IdentityType.MATCH_REPOSITORY:
        return signed.name == intended.name
    if kind is IdentityType.MATCH_EXACT:
        return not intended.name_only and not signed.name_only and str(signed) == str(intended)
    if kind is IdentityType.REMAP_IDENTITY:
        assert identity.prefix is not None and identity.signed_prefix is not None
        intended = _remap(intended, identity.prefix, identity.signed_prefix)
    return _repo_digest_or_exact(intended, signed)


def _repo_digest_or_exact(intended: DockerName, signed: DockerName) -> bool:
    if signed.name_only:
        return False
    if intended.tag is not None:
        return str(signed) == str(intended)
    if intended.digest is not None:
        # The pulled manifest was checked against the digest, and the signature
        # against the manifest: only the repository is left to compare.
        return signed.name == intended.name
    return False


def _remap(intended: DockerName, prefix: str, signed_prefix: str) -> DockerName:
    text = str(intended)
    # "example.com/ns" matches "example.com/ns/repo:tag", never "example.com/nsfoo".
    if text == prefix or (text.startswith(prefix) and text[len(prefix)] in ":/@"):
        return parse_docker_name(signed_prefix + text[len(prefix) :])
    return intended
