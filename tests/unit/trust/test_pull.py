"""The verifier plugged into ``fetch.pull.pull``: an accepted image carries
its decision record into the store; after a refused pull the store holds
nothing of that image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from podman_sd.errors import TrustError
from podman_sd.fetch.oci_layout import OCILayoutSource
from podman_sd.fetch.pull import pull
from podman_sd.image.reference import parse_reference
from podman_sd.image.store import Store
from podman_sd.trust.policy import Policy
from podman_sd.trust.verify import policy_verifier

from .helpers import MemorySignatures, oci_layout, policy_of, public_pem, sign, simple_payload

COSIGN = "cosign container image signature"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[str, str]:
    """An oci: reference and its manifest digest."""
    oci_layout(tmp_path / "layout")
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    return f"oci:{tmp_path / 'layout'}:1.0", index["manifests"][0]["digest"]


def sigstore_policy(tmp_path: Path, key: ec.EllipticCurvePrivateKey, identity: str) -> Policy:
    key_path = tmp_path / "cosign.pub"
    key_path.write_bytes(public_pem(key))
    req = {
        "type": "sigstoreSigned",
        "keyPath": str(key_path),
        "signedIdentity": {"type": "exactRepository", "dockerRepository": identity},
    }
    return policy_of({f"oci:{tmp_path / 'layout'}": [req]})


def test_accepted_pull_records_the_decision(tmp_path: Path, layout: tuple[str, str]) -> None:
    reference, digest = layout
    key = ec.generate_private_key(ec.SECP256R1())
    policy = sigstore_policy(tmp_path, key, "registry.example.com/team/app")
    signatures = MemorySignatures(
        [sign(key, simple_payload(digest, "registry.example.com/team/app:1.0", COSIGN))]
    )
    store = Store(tmp_path / "store")
    ref = parse_reference(reference)
    record = pull(OCILayoutSource(ref), store, str(ref), policy_verifier(signatures, policy))
    assert record.verification["requirements"][0]["type"] == "sigstoreSigned"
    assert record.verification["digest"] == digest
    assert store.image(str(ref)) == record


def test_refused_pull_leaves_nothing(tmp_path: Path, layout: tuple[str, str]) -> None:
    reference, digest = layout
    key, stranger = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    policy = sigstore_policy(tmp_path, key, "registry.example.com/team/app")
    signatures = MemorySignatures(
        [sign(stranger, simple_payload(digest, "registry.example.com/team/app:1.0", COSIGN))]
    )
    store = Store(tmp_path / "store")
    ref = parse_reference(reference)
    with pytest.raises(TrustError, match=f"image {ref}: no valid sigstore signature"):
        pull(OCILayoutSource(ref), store, str(ref), policy_verifier(signatures, policy))
    assert store.images() == {}
    assert not store.blobs.exists() or list(store.blobs.iterdir()) == []
