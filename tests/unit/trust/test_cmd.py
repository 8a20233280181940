"""podman-sd trust show|set against a policy under tmp_path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from podman_sd.errors import PolicyError
from podman_sd.trust.cmd import run_trust_set, run_trust_show
from podman_sd.trust.policy import SignedBy, SigstoreSigned, load_policy

from .conftest import GpgKey

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PODMAN_SD_CONFIG_DIR", str(tmp_path / "etc"))
    return tmp_path / "etc" / "policy.json"


@pytest.fixture
def cosign_key(tmp_path: Path) -> Path:
    path = tmp_path / "cosign.pub"
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def test_set_and_show(config: Path, cosign_key: Path, gpg_keys: tuple[GpgKey, GpgKey]) -> None:
    assert run_trust_set("sigstoreSigned", [str(cosign_key)], "quay.io/team") == 0
    assert run_trust_set("signedBy", [str(gpg_keys[0].armored)], "registry.example.com") == 0
    assert run_trust_set("accept", [], "oci:/srv/images") == 0
    assert run_trust_set("reject", [], "docker.io") == 0
    policy = load_policy(config)
    assert policy.default.requirements[0].type_name == "reject"  # started from the shipped default
    by = {(s.transport, s.scope): s.requirements[0] for s in policy.scopes}
    cosign = by[("docker", "quay.io/team")]
    assert isinstance(cosign, SigstoreSigned) and cosign.keys[0].path == str(cosign_key)
    gpg = by[("docker", "registry.example.com")]
    assert isinstance(gpg, SignedBy) and gpg.keys[0].path == str(gpg_keys[0].armored)
    assert by[("oci", "/srv/images")].type_name == "insecureAcceptAnything"
    assert (
        json.loads(config.read_text())["transports"]["docker"]["registry.example.com"][0]["keyType"]
        == "GPGKeys"
    )
    assert config.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in config.parent.iterdir()] == ["policy.json"]  # no temporary left

    out = io.StringIO()
    assert run_trust_show(False, out) == 0
    table = out.getvalue().splitlines()
    assert table[0].split() == ["TRANSPORT", "SCOPE", "TYPE", "KEYS"]
    assert table[1].split() == ["all", "default", "reject", "-"]
    assert ["docker", "quay.io/team", "sigstoreSigned", str(cosign_key)] in [
        r.split() for r in table
    ]

    out = io.StringIO()
    run_trust_show(True, out)
    doc = json.loads(out.getvalue())
    assert doc["policy"] == str(config)
    assert {"transport": "oci", "scope": "/srv/images", "type": "insecureAcceptAnything"} in doc[
        "requirements"
    ]

    assert run_trust_set("accept", [], "default") == 0
    assert load_policy(config).default.requirements[0].type_name == "insecureAcceptAnything"


@pytest.mark.parametrize(
    ("type", "keys", "scope", "why"),
    [
        ("sigstore", [], "quay.io", "must be one of"),
        ("sigstoreSigned", [], "quay.io", "needs at least one --pubkeyfile"),
        ("reject", ["/k"], "quay.io", "makes no sense"),
        ("sigstoreSigned", ["/nonexistent.pub"], "quay.io", "No such file"),
        ("accept", [], "https://quay.io", "not a docker scope"),
        ("accept", [], "oci:relative", "absolute"),
    ],
)
def test_set_refuses(config: Path, type: str, keys: list[str], scope: str, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        run_trust_set(type, keys, scope)
    assert not config.exists()


def test_set_refuses_a_key_it_could_not_use(config: Path, tmp_path: Path, cosign_key: Path) -> None:
    with pytest.raises(PolicyError, match="not an OpenPGP public key"):
        run_trust_set("signedBy", [str(cosign_key)], "quay.io")
    with pytest.raises(PolicyError, match="not a PEM public key"):
        run_trust_set("sigstoreSigned", [str(cosign_key), "/dev/null"], "quay.io")


def test_set_refuses_to_edit_a_broken_policy(config: Path) -> None:
    config.parent.mkdir(parents=True)
    config.write_text('{"default": [{"type": "signedBaseLayer"}]}')
    with pytest.raises(PolicyError, match="signedBaseLayer"):
        run_trust_set("accept", [], "quay.io")
    assert "signedBaseLayer" in config.read_text()


def test_shipped_policy_rejects_everything() -> None:
    policy = load_policy(REPO_ROOT / "packaging/policy.json")
    assert [r.type_name for s in policy.all_scopes() for r in s.requirements] == ["reject"]
