"""End to end against a third-party signer: skopeo signs an image with GPG
(``copy --sign-by``, as an image publisher would), our verifier accepts it
under the signing key and rejects it under another, read both from skopeo's
``dir:`` output and from a lookaside store laid out as registries.d says."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from podman_sd.errors import TrustError
from podman_sd.image.reference import parse_reference
from podman_sd.trust.lookaside import LookasideSignatures, load_registries_d
from podman_sd.trust.source import CombinedSource, NoSignatures
from podman_sd.trust.verify import evaluate

from .conftest import GpgKey
from .helpers import FileSignatures, manifest_digest, oci_layout, policy_of

IMAGE = "registry.example.com/team/app:1.0"


@pytest.fixture(scope="module")
def skopeo_signed(
    gpg_keys: tuple[GpgKey, GpgKey], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    if shutil.which("skopeo") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("skopeo is not installed (make deps)")
        pytest.skip("skopeo is not installed (make deps)")
    trusted, _ = gpg_keys
    base = tmp_path_factory.mktemp("skopeo")
    oci_layout(base / "layout")
    dest = base / "signed"
    subprocess.run(
        [
            "skopeo", "--insecure-policy", "copy", "--quiet",
            "--sign-by", trusted.fingerprint, "--sign-identity", IMAGE,
            f"oci:{base / 'layout'}:1.0", f"dir:{dest}",
        ],
        env={**trusted.env(), "TMPDIR": str(base), "HOME": str(base)},
        check=True,
        capture_output=True,
    )  # fmt: skip
    assert (dest / "signature-1").exists()
    return dest


def signed_by(key: GpgKey) -> object:
    req = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(key.armored)}
    return policy_of({"registry.example.com/team": [req]})


def test_skopeo_signature_is_accepted_under_its_key(
    skopeo_signed: Path, gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    trusted, _ = gpg_keys
    record = evaluate(
        signed_by(trusted),  # type: ignore[arg-type]
        parse_reference(IMAGE),
        manifest_digest(skopeo_signed),
        FileSignatures.of_dir(skopeo_signed),
        scratch_dir=tmp_path,
    )
    assert record["requirements"][0]["key"] == trusted.fingerprint
    assert record["requirements"][0]["identity"] == IMAGE


def test_skopeo_signature_is_rejected_under_another_key(
    skopeo_signed: Path, gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    _, stranger = gpg_keys
    with pytest.raises(
        TrustError, match=r"image registry\.example\.com/team/app:1\.0: .*No public key"
    ):
        evaluate(
            signed_by(stranger),  # type: ignore[arg-type]
            parse_reference(IMAGE),
            manifest_digest(skopeo_signed),
            FileSignatures.of_dir(skopeo_signed),
            scratch_dir=tmp_path,
        )


def test_skopeo_signature_from_a_lookaside_store(
    skopeo_signed: Path, gpg_keys: tuple[GpgKey, GpgKey], tmp_path: Path
) -> None:
    trusted, _ = gpg_keys
    digest = manifest_digest(skopeo_signed)
    store = tmp_path / "sigstore" / f"team/app@sha256={digest.partition(':')[2]}"
    store.mkdir(parents=True)
    shutil.copy(skopeo_signed / "signature-1", store / "signature-1")
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir()
    (registries_d / "example.yaml").write_text(
        f"docker:\n  registry.example.com:\n    lookaside: file://{tmp_path / 'sigstore'}\n"
    )
    source = CombinedSource(NoSignatures(), LookasideSignatures(load_registries_d([registries_d])))
    record = evaluate(
        signed_by(trusted),  # type: ignore[arg-type]
        parse_reference(IMAGE),
        digest,
        source,
        scratch_dir=tmp_path,
    )
    assert record["requirements"][0]["signature"] == 1
    # The same signature does not vouch for another tag.
    with pytest.raises(TrustError, match="does not match"):
        evaluate(
            signed_by(trusted),  # type: ignore[arg-type]
            parse_reference("registry.example.com/team/app:2.0"),
            digest,
            source,
            scratch_dir=tmp_path,
        )
