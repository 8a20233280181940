"""cosign attachments read from a registry (issue 5): the manifest at tag
``sha256-HEX.sig``, one payload blob per signature, the signature in the
layer annotation; and the fetch helper's pull wiring them into the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from podman_sd.errors import ImageError, TrustError
from podman_sd.fetch.auth import AuthFile
from podman_sd.fetch.main import pull_reference
from podman_sd.fetch.pull import Verifier, pull
from podman_sd.fetch.registry import RegistrySource
from podman_sd.image.reference import parse_reference
from podman_sd.image.spec import MEDIA_OCI_CONFIG, MEDIA_OCI_MANIFEST
from podman_sd.image.store import Store
from podman_sd.trust.source import (
    COSIGN_PAYLOAD_TYPE,
    COSIGN_SIGNATURE_ANNOTATION,
    MAX_SIGSTORE_PAYLOAD_SIZE,
    CombinedSource,
    NoSignatures,
)
from podman_sd.trust.verify import policy_verifier
from tests.unit.fetch.conftest import FAST, assert_store_clean, insecure
from tests.unit.fetch.fakeregistry import FakeRegistry, Handler, make_image, sha
from tests.unit.trust.helpers import policy_of, public_pem, sign

COSIGN = "cosign container image signature"


def payload(digest: str, reference: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": COSIGN,
            },
            "optional": None,
        }
    ).encode()


def attach(
    fake: FakeRegistry, repo: str, digest: str, layers: list[tuple[str, bytes, str | None]]
) -> None:
    """Store cosign's attachment for DIGEST: LAYERS are (media type, blob, signature)."""
    config = b"{}"
    fake.blobs[sha(config)] = config
    descriptors = []
    for media_type, blob, signature in layers:
        fake.blobs[sha(blob)] = blob
        descriptor: dict[str, object] = {
            "mediaType": media_type,
            "digest": sha(blob),
            "size": len(blob),
        }
        if signature is not None:
            descriptor["annotations"] = {COSIGN_SIGNATURE_ANNOTATION: signature}
        descriptors.append(descriptor)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": sha(config), "size": 2},
            "layers": descriptors,
        }
    ).encode()
    fake.add_manifest(repo, f"{digest.replace(':', '-')}.sig", manifest, MEDIA_OCI_MANIFEST)


def source(fake: FakeRegistry, name: str) -> RegistrySource:
    ref = parse_reference(f"{fake.host}/{name}")
    return RegistrySource(ref, insecure(fake.host), AuthFile({}, "-"), FAST, certs_dirs=())


def test_no_attachment_means_no_signatures(fake: FakeRegistry) -> None:
    image = make_image(10)
    fake.add_image("app", "v1", image)
    with source(fake, "app:v1") as src:
        assert src.sigstore_signatures(image.digest) == []
    tag = image.digest.replace(":", "-") + ".sig"
    assert fake.requests_for(f"/v2/app/manifests/{tag}")


def test_signatures_come_from_the_attachment(fake: FakeRegistry) -> None:
    image = make_image(10)
    fake.add_image("app", "v1", image)
    first = payload(image.digest, f"{fake.host}/app:v1")
    second = payload(image.digest, f"{fake.host}/app")
    attach(
        fake,
        "app",
        image.digest,
        [
            (COSIGN_PAYLOAD_TYPE, first, "c2lnLTE="),
            ("application/vnd.in-toto+json", b"an attestation", "eA=="),
            (COSIGN_PAYLOAD_TYPE, second, None),
        ],
    )
    with source(fake, "app:v1") as src:
        found = src.sigstore_signatures(image.digest)
    assert [(s.payload, s.signature_b64, s.media_type) for s in found] == [
        (first, "c2lnLTE=", COSIGN_PAYLOAD_TYPE),
        (second, "", COSIGN_PAYLOAD_TYPE),
    ]
    # Other attachments are not even downloaded.
    assert not fake.requests_for(sha(b"an attestation"))


def test_payload_with_the_wrong_digest_is_an_error(fake: FakeRegistry) -> None:
    image = make_image(10)
    fake.add_image("app", "v1", image)
    blob = payload(image.digest, f"{fake.host}/app")
    attach(fake, "app", image.digest, [(COSIGN_PAYLOAD_TYPE, blob, "eA==")])

    def hook(handler: Handler, kind: str, ref: str) -> bool:
        if ref != sha(blob):
            return False
        handler.send_body(200, blob.replace(b"cosign", b"COSIGN"))
        return True

    fake.hook = hook
    with source(fake, "app:v1") as src, pytest.raises(ImageError) as err:
        src.sigstore_signatures(image.digest)
    assert f"payload {sha(blob)}: content has digest" in str(err.value)
    assert "\n" not in str(err.value)


def test_oversized_payload_is_refused_before_download(fake: FakeRegistry) -> None:
    image = make_image(10)
    fake.add_image("app", "v1", image)
    attach(fake, "app", image.digest, [(COSIGN_PAYLOAD_TYPE, b"{}", "eA==")])
    manifest, media_type = fake.manifests[f"app:{image.digest.replace(':', '-')}.sig"]
    doc = json.loads(manifest)
    doc["layers"][0]["size"] = MAX_SIGSTORE_PAYLOAD_SIZE + 1
    fake.add_manifest(
        "app", f"{image.digest.replace(':', '-')}.sig", json.dumps(doc).encode(), media_type
    )
    with source(fake, "app:v1") as src, pytest.raises(ImageError, match="larger than the limit"):
        src.sigstore_signatures(image.digest)
    assert not fake.requests_for(f"/blobs/{sha(b'{}')}")


def test_malformed_attachment_is_an_error(fake: FakeRegistry) -> None:
    image = make_image(10)
    fake.add_image("app", "v1", image)
    bad = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST, "layers": "x"})
    fake.add_manifest(
        "app", f"{image.digest.replace(':', '-')}.sig", bad.encode(), MEDIA_OCI_MANIFEST
    )
    with source(fake, "app:v1") as src, pytest.raises(ImageError, match="layers must be a list"):
        src.sigstore_signatures(image.digest)


def test_pull_checks_the_registry_signatures(fake: FakeRegistry, tmp_path: Path) -> None:
    image = make_image(100)
    fake.add_image("app", "v1", image)
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    signed = sign(key, payload(image.digest, f"{fake.host}/app:v1"))
    attach(fake, "app", image.digest, [(COSIGN_PAYLOAD_TYPE, signed.payload, signed.signature_b64)])
    for name, private in (("key.pub", key), ("other.pub", other)):
        (tmp_path / name).write_bytes(public_pem(private))

    def verifier(src: RegistrySource, key_file: str) -> Verifier:
        req = {"type": "sigstoreSigned", "keyPath": str(tmp_path / key_file)}
        return policy_verifier(CombinedSource(src, NoSignatures()), policy_of({fake.host: [req]}))

    store = Store(tmp_path / "refused")
    with source(fake, "app:v1") as src, pytest.raises(TrustError) as err:
        pull(src, store, str(src.ref), verifier(src, "other.pub"))
    assert f"image {fake.host}/app:v1: no valid sigstore signature" in str(err.value)
    assert f"(policy scope docker:{fake.host}: sigstoreSigned" in str(err.value)
    assert store.images() == {}
    assert not store.blobs.exists() or list(store.blobs.iterdir()) == []

    store = Store(tmp_path / "accepted")
    with source(fake, "app:v1") as src:
        record = pull(src, store, str(src.ref), verifier(src, "key.pub"))
    assert record.verification["digest"] == image.digest
    assert record.verification["requirements"][0]["type"] == "sigstoreSigned"
    assert_store_clean(store)


def test_fetch_helper_wires_the_attachments(
    fake: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pull_reference: the policy from the config folder, signatures from the registry."""
    image = make_image(100)
    fake.add_image("app", "v1", image)
    key = ec.generate_private_key(ec.SECP256R1())
    signed = sign(key, payload(image.digest, f"{fake.host}/app:v1"))
    config = tmp_path / "etc"
    (config / "registries.d").mkdir(parents=True)
    (config / "key.pub").write_bytes(public_pem(key))
    (config / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{fake.host}"\ninsecure = true\n'
    )
    policy = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {fake.host: [{"type": "sigstoreSigned", "keyPath": str(config / "key.pub")}]}
        },
    }
    (config / "policy.json").write_text(json.dumps(policy))
    monkeypatch.setenv("PODMAN_SD_CONFIG_DIR", str(config))
    store = Store(tmp_path / "store")
    auth = AuthFile({}, "-")

    with pytest.raises(TrustError, match=r"not signed \(no sigstore signatures for"):
        pull_reference(f"{fake.host}/app:v1", store, auth=auth)
    assert store.images() == {}

    attach(fake, "app", image.digest, [(COSIGN_PAYLOAD_TYPE, signed.payload, signed.signature_b64)])
    record = pull_reference(f"{fake.host}/app:v1", store, auth=auth)
    assert record.verification["requirements"][0]["key"].startswith("SHA256:")
