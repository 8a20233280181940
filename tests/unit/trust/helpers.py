"""Shared pieces of the trust tests: a signature source over containers/image's
``dir:`` layout, policies built from JSON, cosign-style signing, a hand-made
OCI layout."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from podman_sd.errors import ImageError
from podman_sd.image.reference import ImageRef
from podman_sd.trust.policy import Policy, parse_policy
from podman_sd.trust.source import COSIGN_SIGNATURE_ANNOTATION, SigstoreSignature

# ../shared/vectors/ next to the repository (the acceptance data).
VECTORS = Path(__file__).resolve().parents[3].parent / "shared/vectors/containers-image-signatures"

SIGSTORE_PREFIX = b"\x00sigstore-json\n"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def manifest_digest(case: Path) -> str:
    """The digest a pull of this dir: image would verify (no manifest, no pull)."""
    manifest = case / "manifest.json"
    if not manifest.exists():
        raise ImageError(f"image dir:{case}: no manifest.json")
    return digest_of(manifest.read_bytes())


def sigstore_from_file(data: bytes) -> SigstoreSignature:
    """containers/image's on-disk sigstore signature: NUL, "sigstore-json", JSON."""
    assert data.startswith(SIGSTORE_PREFIX)
    doc = json.loads(data[len(SIGSTORE_PREFIX) :])
    return SigstoreSignature(
        payload=base64.b64decode(doc["payload"]),
        signature_b64=doc["annotations"][COSIGN_SIGNATURE_ANNOTATION],
        media_type=doc["mimeType"],
    )


class FileSignatures:
    """Signatures given as files (signature-1, signature-2, … of a dir: image)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.calls: list[str] = []

    @classmethod
    def of_dir(cls, case: Path) -> FileSignatures:
        files = []
        index = 1
        while (case / f"signature-{index}").exists():
            files.append(case / f"signature-{index}")
            index += 1
        return cls(files)

    def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
        self.calls.append("sigstore")
        return [
            sigstore_from_file(data)
            for data in (f.read_bytes() for f in self.files)
            if data.startswith(SIGSTORE_PREFIX)
        ]

    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        self.calls.append("simple")
        return [
            data
            for data in (f.read_bytes() for f in self.files)
            if not data.startswith(SIGSTORE_PREFIX)
        ]


class MemorySignatures:
    def __init__(
        self, sigstore: list[SigstoreSignature] | None = None, simple: list[bytes] | None = None
    ) -> None:
        self.sigstore = sigstore or []
        self.simple = simple or []

    def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
        return list(self.sigstore)

    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        return list(self.simple)


def policy_of(scopes: dict[str, list[dict[str, Any]]], default: str = "reject") -> Policy:
    """A policy: SCOPES are docker scopes (or "oci:/path"), everything else DEFAULT."""
    transports: dict[str, dict[str, Any]] = {}
    for scope, reqs in scopes.items():
        transport, name = "docker", scope
        if scope.startswith(("oci:", "oci-archive:")):
            transport, _, name = scope.partition(":")
        transports.setdefault(transport, {})[name] = reqs
    doc = {"default": [{"type": default}], "transports": transports}
    return parse_policy(json.loads(json.dumps(doc)), "test-policy.json")


def simple_payload(digest: str, reference: str, kind: str = "atomic container signature") -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": kind,
            },
            "optional": {"creator": "podman-sd tests"},
        }
    ).encode()


PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def sign(key: PrivateKey, payload: bytes) -> SigstoreSignature:
    """What `cosign sign --key` attaches: payload as the layer, signature as annotation."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = key.sign(payload)
    return SigstoreSignature(payload, base64.b64encode(raw).decode())


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def oci_layout(layout: Path) -> None:
    """A one-layer OCI image layout tagged 1.0, built by hand."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("hello")
        content = b"hello, world\n"
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    layer = tar.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
            "config": {},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **blob(layout, config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layout, layer)}
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **blob(layout, manifest),
                "annotations": {"org.opencontainers.image.ref.name": "1.0"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
