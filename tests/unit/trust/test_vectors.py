"""Every case of containers/image's signature fixtures (../shared/vectors/,
signed by cosign and GnuPG, not by us) gets exactly the outcome of the
README's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podman_sd.errors import ImageError, TrustError
from podman_sd.image.reference import parse_reference
from podman_sd.trust.verify import evaluate

from .helpers import VECTORS, FileSignatures, manifest_digest, policy_of

COSIGN_REF = "192.168.64.2:5000/cosign-signed-single-sample"
SKOPEO_REF = "192.168.64.2:5000/skopeo-signed"


def sigstore(identity: str) -> list[dict[str, object]]:
    return [
        {
            "type": "sigstoreSigned",
            "keyPath": str(VECTORS / "cosign.pub"),
            "signedIdentity": {"type": identity},
        }
    ]


def gpg(key: str = "public-key.gpg") -> list[dict[str, object]]:
    return [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(VECTORS / key)}]


ACCEPTED = ""
IDENTITY = "which does not match"
DIGEST = "it signs manifest"
NO_MANIFEST = "no manifest.json"

# (case, reference it claims, requirement, ACCEPTED or a piece of the
# reason it is rejected) — the README's tables.
# A "case" that is a single file is a signature beside the manifest of
# dir-img-valid (GPG) or dir-img-cosign-valid (sigstore).
CASES = [
    # sigstore, cosign.pub, matchRepository
    ("dir-img-cosign-valid", COSIGN_REF, sigstore("matchRepository"), ACCEPTED),
    ("dir-img-cosign-valid", "testing/manifest:notlatest", sigstore("matchRepository"), IDENTITY),
    ("dir-img-cosign-valid-2", COSIGN_REF, sigstore("matchRepository"), ACCEPTED),
    ("dir-img-cosign-valid-2", "this/does-not:match", sigstore("matchRepository"), IDENTITY),
    ("dir-img-cosign-mixed", COSIGN_REF, sigstore("matchRepository"), ACCEPTED),
    ("dir-img-cosign-manifest-digest-error", COSIGN_REF, sigstore("matchRepository"), DIGEST),
    ("dir-img-cosign-modified-manifest", COSIGN_REF, sigstore("matchRepository"), DIGEST),
    ("dir-img-cosign-no-manifest", COSIGN_REF, sigstore("matchRepository"), NO_MANIFEST),
    (
        "dir-img-cosign-other-attachment",
        "testing/manifest:latest",
        sigstore("matchRepository"),
        "not a cosign signature",
    ),
    ("unknown-cosign-key.signature", COSIGN_REF, sigstore("matchRepository"), "trusted key"),
    # sigstore, cosign.pub, matchExact
    ("dir-img-cosign-valid-with-tag", f"{SKOPEO_REF}:tag", sigstore("matchExact"), ACCEPTED),
    ("dir-img-cosign-valid-with-tag", f"{SKOPEO_REF}:othertag", sigstore("matchExact"), IDENTITY),
    ("dir-img-cosign-valid", COSIGN_REF, sigstore("matchExact"), IDENTITY),
    # GPG, public-key.gpg, matchRepoDigestOrExact
    ("dir-img-valid", "testing/manifest:latest", gpg(), ACCEPTED),
    ("dir-img-valid", "testing/manifest:notlatest", gpg(), IDENTITY),
    ("dir-img-valid-2", "testing/manifest:latest", gpg(), ACCEPTED),
    ("dir-img-valid-2", "testing/manifest:notlatest", gpg(), IDENTITY),
    ("dir-img-mixed", "testing/manifest:latest", gpg(), ACCEPTED),
    ("dir-img-unsigned", "testing/manifest:latest", gpg(), "not signed"),
    ("dir-img-manifest-digest-error", "testing/manifest:latest", gpg(), DIGEST),
    ("dir-img-modified-manifest", "testing/manifest:latest", gpg(), DIGEST),
    ("dir-img-no-manifest", "testing/manifest:latest", gpg(), NO_MANIFEST),
    (
        "dir-img-valid-subkey",
        "testing/manifest:latest",
        gpg("public-key-with-subkey.gpg"),
        ACCEPTED,
    ),
    ("unknown-key.signature", "testing/manifest:latest", gpg(), "No public key"),
    ("unknown-key.signature-v3", "testing/manifest:latest", gpg(), "No public key"),
    ("invalid-blob.signature", "testing/manifest:latest", gpg(), "not a JSON signature"),
    ("invalid-blob.signature-v3", "testing/manifest:latest", gpg(), "not a JSON signature"),
]


def run_case(
    case: str, reference: str, requirement: list[dict[str, object]], scratch: Path
) -> dict[str, Any]:
    ref = parse_reference(reference)
    policy = policy_of({f"{ref.registry}/{ref.repository}": requirement})
    path = VECTORS / case
    if path.is_dir():
        source, image = FileSignatures.of_dir(path), path
    else:
        cosign = "cosign" in case
        source = FileSignatures([path])
        image = VECTORS / ("dir-img-cosign-valid" if cosign else "dir-img-valid")
    # Without a manifest a pull never gets as far as the signatures.
    digest = manifest_digest(image)
    return evaluate(policy, ref, digest, source, scratch_dir=scratch)


@pytest.mark.parametrize(
    ("case", "reference", "requirement", "why"),
    CASES,
    ids=[f"{case}@{reference}-{req[0]['type']}" for case, reference, req, _ in CASES],
)
def test_vector(
    case: str,
    reference: str,
    requirement: list[dict[str, object]],
    why: str,
    tmp_path: Path,
) -> None:
    assert VECTORS.is_dir(), f"the shared test vectors are missing at {VECTORS}"
    if why == ACCEPTED:
        record = run_case(case, reference, requirement, tmp_path)
        assert record["requirements"][0]["type"] == requirement[0]["type"]
        return
    with pytest.raises(ImageError) as info:
        run_case(case, reference, requirement, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert why in message
    if isinstance(info.value, TrustError):
        assert str(parse_reference(reference)) in message
        assert "policy scope docker:" in message


def test_vectors_cover_every_case() -> None:
    """Every case folder and loose signature file of the vectors is in the table."""
    named = {c[0] for c in CASES}
    present = {
        p.name
        for p in VECTORS.iterdir()
        if p.name.startswith("dir-img-") or p.name.endswith((".signature", ".signature-v3"))
    }
    assert present <= named, present - named
