"""cosign signatures made in the test with ``cryptography``, in cosign's
layout (payload blob + base64 signature annotation), one test per key type,
and every rejection the issue lists, each a one-line reason naming the image
and the policy scope."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from podman_sd.errors import PolicyError, TrustError
from podman_sd.image.reference import parse_reference
from podman_sd.trust.policy import load_policy
from podman_sd.trust.sigstore import load_public_key
from podman_sd.trust.source import SigstoreSignature
from podman_sd.trust.verify import evaluate, policy_verifier

from .helpers import (
    MemorySignatures,
    PrivateKey,
    digest_of,
    policy_of,
    public_pem,
    sign,
    simple_payload,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
IMAGE = "registry.example.com/team/app:1.0"
DIGEST = digest_of(b"the manifest")
COSIGN = "cosign container image signature"


def write_key(tmp_path: Path, key: PrivateKey, name: str = "cosign.pub") -> Path:
    path = tmp_path / name
    path.write_bytes(public_pem(key))
    return path


def sigstore_policy(key_path: Path, scope: str = "registry.example.com/team") -> object:
    return policy_of({scope: [{"type": "sigstoreSigned", "keyPath": str(key_path)}]})


KEY_TYPES: dict[str, Callable[[], PrivateKey]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "rsa-3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
}


@pytest.mark.parametrize("kind", sorted(KEY_TYPES))
def test_key_type_accepts_its_signature(kind: str, tmp_path: Path) -> None:
    key = KEY_TYPES[kind]()
    key_path = write_key(tmp_path, key)
    signature = sign(key, simple_payload(DIGEST, IMAGE, COSIGN))
    record = evaluate(
        sigstore_policy(key_path),  # type: ignore[arg-type]
        parse_reference(IMAGE),
        DIGEST,
        MemorySignatures([signature]),
    )
    req = record["requirements"][0]
    assert req["type"] == "sigstoreSigned"
    assert req["key"] == load_public_key(public_pem(key), "k").key_id
    assert req["signature"] == 1
    assert record["scope"] == "docker:registry.example.com/team"
    assert record["digest"] == DIGEST
    json.dumps(record)  # stored with the image


@pytest.mark.parametrize("kind", sorted(KEY_TYPES))
def test_key_type_rejects_another_key(kind: str, tmp_path: Path) -> None:
    key_path = write_key(tmp_path, KEY_TYPES[kind]())
    other = KEY_TYPES[kind]()
    signature = sign(other, simple_payload(DIGEST, IMAGE, COSIGN))
    with pytest.raises(TrustError, match="not signed by a trusted key"):
        evaluate(
            sigstore_policy(key_path),  # type: ignore[arg-type]
            parse_reference(IMAGE),
            DIGEST,
            MemorySignatures([signature]),
        )


@pytest.fixture
def p256(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, write_key(tmp_path, key)


def refusal(policy: object, signatures: list[SigstoreSignature], image: str = IMAGE) -> str:
    with pytest.raises(TrustError) as info:
        evaluate(policy, parse_reference(image), DIGEST, MemorySignatures(signatures))  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert f"image {parse_reference(image)}" in message
    assert "policy scope " in message
    return message


def test_unsigned_image_is_rejected(p256: tuple[ec.EllipticCurvePrivateKey, Path]) -> None:
    message = refusal(sigstore_policy(p256[1]), [])
    assert "not signed" in message
    assert "docker:registry.example.com/team" in message


def test_payload_digest_of_another_image_is_rejected(
    p256: tuple[ec.EllipticCurvePrivateKey, Path],
) -> None:
    other = digest_of(b"another manifest")
    message = refusal(
        sigstore_policy(p256[1]), [sign(p256[0], simple_payload(other, IMAGE, COSIGN))]
    )
    assert f"it signs manifest {other}" in message


def test_identity_of_another_repository_is_rejected(
    p256: tuple[ec.EllipticCurvePrivateKey, Path],
) -> None:
    payload = simple_payload(DIGEST, "registry.example.com/team/other:1.0", COSIGN)
    message = refusal(sigstore_policy(p256[1]), [sign(p256[0], payload)])
    assert "registry.example.com/team/other:1.0, which does not match" in message


def test_corrupted_signature_is_rejected(p256: tuple[ec.EllipticCurvePrivateKey, Path]) -> None:
    good = sign(p256[0], simple_payload(DIGEST, IMAGE, COSIGN))
    raw = bytearray(base64.b64decode(good.signature_b64))
    raw[-1] ^= 0x01
    flipped = SigstoreSignature(good.payload, base64.b64encode(bytes(raw)).decode())
    not_base64 = SigstoreSignature(good.payload, "%%%")
    tampered = SigstoreSignature(good.payload.replace(b"1.0", b"2.0"), good.signature_b64)
    message = refusal(sigstore_policy(p256[1]), [flipped, not_base64, tampered])
    assert "signature 1: not signed by a trusted key" in message
    assert "signature 2: the signature annotation is not valid base64" in message
    assert "signature 3: not signed by a trusted key" in message


def test_wrong_payload_type_is_rejected(p256: tuple[ec.EllipticCurvePrivateKey, Path]) -> None:
    payload = simple_payload(DIGEST, IMAGE, "atomic container signature")
    message = refusal(sigstore_policy(p256[1]), [sign(p256[0], payload)])
    assert "critical.type" in message


def test_unknown_critical_field_is_rejected(p256: tuple[ec.EllipticCurvePrivateKey, Path]) -> None:
    doc = json.loads(simple_payload(DIGEST, IMAGE, COSIGN))
    doc["critical"]["restriction"] = "only on Tuesdays"
    message = refusal(sigstore_policy(p256[1]), [sign(p256[0], json.dumps(doc).encode())])
    assert "critical has fields" in message


def test_one_valid_signature_among_invalid_ones_is_enough(
    p256: tuple[ec.EllipticCurvePrivateKey, Path],
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    signatures = [
        sign(stranger, simple_payload(DIGEST, IMAGE, COSIGN)),
        SigstoreSignature(b"junk", "AAAA"),
        sign(p256[0], simple_payload(digest_of(b"x"), IMAGE, COSIGN)),
        sign(p256[0], simple_payload(DIGEST, IMAGE, COSIGN)),
    ]
    record = evaluate(
        sigstore_policy(p256[1]),  # type: ignore[arg-type]
        parse_reference(IMAGE),
        DIGEST,
        MemorySignatures(signatures),
    )
    assert record["requirements"][0]["signature"] == 4


def test_any_of_several_keys(tmp_path: Path) -> None:
    first, second = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    data = base64.b64encode(public_pem(first)).decode()
    second_path = write_key(tmp_path, second, "second.pub")
    for req in (
        {"type": "sigstoreSigned", "keyPaths": [str(write_key(tmp_path, first)), str(second_path)]},
        {
            "type": "sigstoreSigned",
            "keyDatas": [data, base64.b64encode(public_pem(second)).decode()],
        },
    ):
        policy = policy_of({"registry.example.com": [req]})
        record = evaluate(
            policy,
            parse_reference(IMAGE),
            DIGEST,
            MemorySignatures([sign(second, simple_payload(DIGEST, IMAGE, COSIGN))]),
        )
        assert record["requirements"][0]["key"] == load_public_key(public_pem(second), "k").key_id


def test_reject_refuses_everything(p256: tuple[ec.EllipticCurvePrivateKey, Path]) -> None:
    policy = policy_of(
        {"registry.example.com/team": [{"type": "reject"}]}, default="insecureAcceptAnything"
    )
    signed = [sign(p256[0], simple_payload(DIGEST, IMAGE, COSIGN))]
    message = refusal(policy, signed)
    assert "rejected by the trust policy" in message
    assert "docker:registry.example.com/team: reject" in message


def test_shipped_default_policy_rejects_any_image(
    p256: tuple[ec.EllipticCurvePrivateKey, Path],
) -> None:
    shipped = REPO_ROOT / "packaging/policy.json"
    policy = load_policy(shipped)
    signed = [sign(p256[0], simple_payload(DIGEST, IMAGE, COSIGN))]
    for image in (IMAGE, "busybox", "quay.io/a/b@" + DIGEST, "oci:/srv/layout:1"):
        message = refusal(policy, signed, image)
        assert "policy scope default: reject" in message


def test_accept_anything_fetches_no_signatures() -> None:
    class Exploding(MemorySignatures):
        def sigstore_signatures(self, manifest_digest: str) -> list[SigstoreSignature]:
            raise AssertionError("no signature is needed")

    policy = policy_of({}, default="insecureAcceptAnything")
    record = evaluate(policy, parse_reference(IMAGE), DIGEST, Exploding())
    assert record["requirements"] == [{"type": "insecureAcceptAnything"}]


def test_missing_key_file_names_the_scope(tmp_path: Path) -> None:
    policy = sigstore_policy(tmp_path / "absent.pub")
    message = refusal(policy, [SigstoreSignature(b"{}", "AAAA")])
    assert "absent.pub" in message


def test_verifier_for_pull(p256: tuple[ec.EllipticCurvePrivateKey, Path]) -> None:
    """policy_verifier is what fetch.pull.pull takes as verify=."""
    signatures = MemorySignatures([sign(p256[0], simple_payload(DIGEST, IMAGE, COSIGN))])
    verify = policy_verifier(signatures, sigstore_policy(p256[1]))  # type: ignore[arg-type]
    assert verify(IMAGE, DIGEST)["requirements"][0]["signature"] == 1
    with pytest.raises(TrustError):
        verify(IMAGE, digest_of(b"other"))


def test_missing_policy_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODMAN_SD_CONFIG_DIR", str(tmp_path))
    with pytest.raises(PolicyError, match="no trust policy at"):
        policy_verifier(MemorySignatures())


@pytest.mark.parametrize(
    ("pem", "why"),
    [
        (b"not a key", r"^key.pub: not a PEM public key \(no -----BEGIN PUBLIC KEY----- line\)$"),
        (
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            r"^key.pub: not a PEM public key \(the key in it cannot be read\)$",
        ),
        (
            rsa.generate_private_key(public_exponent=65537, key_size=1024)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "too weak",
        ),
    ],
)
def test_unusable_keys(pem: bytes, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        load_public_key(pem, "key.pub")
