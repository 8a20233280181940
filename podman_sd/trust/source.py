"""What supplies signatures to the policy engine.

Signatures are untrusted input: a source only fetches bytes, it never judges
them. The registry client implements ``sigstore_signatures`` by reading the
cosign attachment manifest at tag ``sha256-HEX.sig``; ``lookaside`` implements
``simple_signatures`` from the containers-registries.d(5) locations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from podman_sd.image.reference import ImageRef

COSIGN_PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
# Bounds on what a registry may make the fetch helper read for one image: a
# payload is a few hundred bytes of JSON, and real images carry a handful of
# signatures.
MAX_SIGSTORE_PAYLOAD_SIZE = 4 * 1024 * 1024
MAX_SIGSTORE_SIGNATURES = 128


@dataclass(frozen=True)
class SigstoreSignature:
    """One layer of a cosign attachment: the payload blob and its signature."""

    payload: bytes
    # The value of the layer annotation dev.cosignproject.cosign/signature.
    signature_b64: str
    # The layer's media type; anything but COSIGN_PAYLOAD_TYPE is not a signature.
    media_type: str = COSIGN_PAYLOAD_TYPE


class SigstoreSource(Protocol):
    def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
        """The cosign signatures attached to MANIFEST_DIGEST; [] if there are none."""


class SimpleSource(Protocol):
    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        """The GPG simple-signing signatures of MANIFEST_DIGEST; [] if there are none."""


class SignatureSource(Protocol):
    def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
        """The cosign signatures attached to MANIFEST_DIGEST; [] if there are none."""

    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        """The GPG simple-signing signatures of MANIFEST_DIGEST; [] if there are none."""


class NoSignatures:
    """A source with no signatures, for transports that cannot carry any."""

    def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
        return []

    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        return []


@dataclass(frozen=True)
class CombinedSource:
    """Sigstore signatures from one source, simple signatures from another.

    The usual pairing for a registry: the registry client for the cosign
    attachments, ``lookaside.LookasideSignatures`` for GPG signatures.
    """

    sigstore: SigstoreSource
    simple: SimpleSource

    def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
        return self.sigstore.sigstore_signatures(manifest_digest)

    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        return self.simple.simple_signatures(reference, manifest_digest)
