"""GPG simple signing with keys made in the test: accept, and each rejection
with a one-line reason naming image and scope."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from podman_sd.errors import PolicyError, TrustError
from podman_sd.image.reference import parse_reference
from podman_sd.trust.gpg import dearmor
from podman_sd.trust.policy import Policy
from podman_sd.trust.verify import evaluate

from .conftest import GpgKey, make_key, stop_agent
from .helpers import MemorySignatures, digest_of, policy_of, simple_payload

IMAGE = "registry.example.com/team/app:1.0"
DIGEST = digest_of(b"the manifest")


def signed_by(key: GpgKey, identity: str | None = None) -> Policy:
    req: dict[str, object] = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(key.armored)}
    if identity:
        req["signedIdentity"] = {"type": identity}
    return policy_of({"registry.example.com/team/app": [req]})


def check(
    policy: Policy, signatures: list[bytes], tmp_path: Path, image: str = IMAGE
) -> dict[str, object]:
    return evaluate(
        policy,
        parse_reference(image),
        DIGEST,
        MemorySignatures(simple=signatures),
        scratch_dir=tmp_path,
    )


def refusal(policy: Policy, signatures: list[bytes], tmp_path: Path, image: str = IMAGE) -> str:
    with pytest.raises(TrustError) as info:
        check(policy, signatures, tmp_path, image)
    message = str(info.value)
    assert "\n" not in message
    assert f"image {parse_reference(image)}" in message
    assert "policy scope docker:registry.example.com/team/app: signedBy" in message
    return message


def test_accepts_a_signature_by_the_trusted_key(
    gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    trusted, _ = gpg_keys
    record = check(signed_by(trusted), [trusted.sign(simple_payload(DIGEST, IMAGE))], tmp_path)
    req = record["requirements"][0]  # type: ignore[index]
    assert req["type"] == "signedBy"
    assert req["key"] == trusted.fingerprint
    assert req["signature"] == 1
    # The throwaway GnuPG home is gone again.
    assert list(tmp_path.iterdir()) == []


def test_key_data_and_binary_keyrings(gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path) -> None:
    trusted, stranger = gpg_keys
    data = base64.b64encode(stranger.binary + trusted.binary).decode()
    policy = policy_of(
        {"registry.example.com": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": data}]}
    )
    record = check(policy, [trusted.sign(simple_payload(DIGEST, IMAGE))], tmp_path)
    assert record["requirements"][0]["key"] == trusted.fingerprint  # type: ignore[index]
    assert dearmor(trusted.armored.read_bytes(), "k") == trusted.binary


def test_digest_reference_matches_any_signed_tag(
    gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    trusted, _ = gpg_keys
    image = f"registry.example.com/team/app@{DIGEST}"
    signature = trusted.sign(simple_payload(DIGEST, "registry.example.com/team/app:whatever"))
    check(signed_by(trusted), [signature], tmp_path, image)


def test_unsigned_image_is_rejected(gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path) -> None:
    assert "not signed" in refusal(signed_by(gpg_keys[0]), [], tmp_path)


def test_signature_by_another_key_is_rejected(
    gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    trusted, stranger = gpg_keys
    message = refusal(signed_by(trusted), [stranger.sign(simple_payload(DIGEST, IMAGE))], tmp_path)
    assert "No public key" in message


def test_payload_digest_of_another_image_is_rejected(
    gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    trusted, _ = gpg_keys
    other = digest_of(b"another manifest")
    message = refusal(signed_by(trusted), [trusted.sign(simple_payload(other, IMAGE))], tmp_path)
    assert f"it signs manifest {other}" in message


def test_identity_of_another_repository_is_rejected(
    gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    trusted, _ = gpg_keys
    payload = simple_payload(DIGEST, "registry.example.com/team/other:1.0")
    for identity in (None, "matchRepository", "matchExact"):
        message = refusal(signed_by(trusted, identity), [trusted.sign(payload)], tmp_path)
        assert "team/other:1.0, which does not match" in message


def test_corrupted_signature_is_rejected(gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path) -> None:
    trusted, _ = gpg_keys
    good = trusted.sign(simple_payload(DIGEST, IMAGE))
    corrupted = bytearray(good)
    corrupted[len(corrupted) // 2] ^= 0x40
    truncated = good[: len(good) - 10]
    message = refusal(signed_by(trusted), [bytes(corrupted), truncated, b"\x00junk"], tmp_path)
    assert "signature 1: " in message and "signature 2: " in message
    assert "signature 3: not an OpenPGP signed message" in message


def test_wrong_payload_type_is_rejected(gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path) -> None:
    trusted, _ = gpg_keys
    payload = simple_payload(DIGEST, IMAGE, "cosign container image signature")
    assert "critical.type" in refusal(signed_by(trusted), [trusted.sign(payload)], tmp_path)


def test_one_valid_signature_among_invalid_ones(
    gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    trusted, stranger = gpg_keys
    signatures = [
        stranger.sign(simple_payload(DIGEST, IMAGE)),
        trusted.sign(b"not json"),
        trusted.sign(simple_payload(DIGEST, IMAGE)),
    ]
    record = check(signed_by(trusted), signatures, tmp_path)
    assert record["requirements"][0]["signature"] == 3  # type: ignore[index]


def test_two_signatures_in_one_message_are_refused(tmp_path: Path) -> None:
    # One message signed by two keys: containers/image accepts exactly one signer.
    one = make_key(tmp_path / "gnupg", "one")
    try:
        one.gpg(
            "--passphrase",
            "",
            "--quick-gen-key",
            "two <two@example.com>",
            "ed25519",
            "sign",
            "never",
        )
        colons = one.gpg("--with-colons", "--list-keys").decode()
        fprs = [line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")]
        assert len(fprs) == 2
        keyring = tmp_path / "both.asc"
        keyring.write_bytes(one.gpg("--armor", "--export", *fprs))
        doubled = one.gpg(
            "--pinentry-mode", "loopback", "--passphrase", "", "-u", fprs[0], "-u", fprs[1],
            "--sign", "--output", "-", input=simple_payload(DIGEST, IMAGE),
        )  # fmt: skip
    finally:
        stop_agent(one.home)
    policy = policy_of(
        {
            "registry.example.com/team/app": [
                {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(keyring)}
            ]
        }
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    message = refusal(policy, [doubled], scratch)
    assert "not exactly one good signature" in message


def test_unusable_gpg_key(tmp_path: Path) -> None:
    bogus = tmp_path / "key.gpg"
    bogus.write_text("hello")
    policy = policy_of(
        {
            "registry.example.com": [
                {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(bogus)}
            ]
        }
    )
    with pytest.raises(TrustError, match="not an OpenPGP public key"):
        check(policy, [b"\x80"], tmp_path)
    with pytest.raises(PolicyError):
        dearmor(
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n%%%\n-----END PGP PUBLIC KEY BLOCK-----", "k"
        )
    json.dumps({})


def test_oversized_payload_is_refused(gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path) -> None:
    trusted, stranger = gpg_keys
    big = simple_payload(DIGEST, IMAGE) + b" " * (5 * 1024 * 1024)
    # By a stranger: refused without gpgv ever writing the 5 MiB out.
    message = refusal(signed_by(trusted), [stranger.sign(big), trusted.sign(big)], tmp_path)
    assert "signature 1: gpgv: Can't check signature: No public key" in message
    assert "signature 2: the signed payload is larger than" in message
