"""containers-policy.json(5) parsing: errors name the file and the field;
scope precedence; signedIdentity semantics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podman_sd.errors import PolicyError
from podman_sd.image.reference import parse_reference
from podman_sd.trust.payload import identity_matches, parse_docker_name
from podman_sd.trust.policy import (
    IdentityType,
    InsecureAcceptAnything,
    Reject,
    SignedBy,
    SignedIdentity,
    SigstoreSigned,
    load_policy,
    parse_policy,
)

from .helpers import VECTORS

KEY = "/etc/pki/cosign.pub"


def policy_error(doc: Any) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(doc, "/etc/podman-sd/policy.json")
    message = str(info.value)
    assert message.startswith("/etc/podman-sd/policy.json: ")
    assert "\n" not in message
    return message


def docker(scope: str, *reqs: dict[str, Any]) -> dict[str, Any]:
    return {"default": [{"type": "reject"}], "transports": {"docker": {scope: list(reqs)}}}


def test_parses_every_supported_requirement() -> None:
    doc = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                "": [{"type": "insecureAcceptAnything"}],
                "quay.io/team": [
                    {
                        "type": "sigstoreSigned",
                        "keyPaths": [KEY, "/etc/pki/other.pub"],
                        "signedIdentity": {"type": "matchRepository"},
                    }
                ],
                "registry.example.com:5000/x:tag": [
                    {"type": "signedBy", "keyType": "GPGKeys", "keyData": "AAAA"},
                    {"type": "sigstoreSigned", "keyDatas": ["AAAA"]},
                ],
                "*.example.org": [
                    {
                        "type": "signedBy",
                        "keyType": "GPGKeys",
                        "keyPath": "/k.gpg",
                        "signedIdentity": {
                            "type": "remapIdentity",
                            "prefix": "mirror.example.org/vendor",
                            "signedPrefix": "vendor.example.com",
                        },
                    }
                ],
                "docker.io/library/busybox@sha256:" + "a" * 64: [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": KEY,
                        "signedIdentity": {
                            "type": "exactReference",
                            "dockerReference": "docker.io/library/busybox:1",
                        },
                    }
                ],
            },
            "oci": {"/srv/images": [{"type": "insecureAcceptAnything"}]},
            "oci-archive": {"/srv/a.tar:v1": [{"type": "reject"}]},
        },
    }
    policy = parse_policy(doc, "p.json")
    assert policy.default.requirements == (Reject(),)
    by = {(s.transport, s.scope): s.requirements for s in policy.scopes}
    assert by[("docker", "")] == (InsecureAcceptAnything(),)
    quay = by[("docker", "quay.io/team")][0]
    assert isinstance(quay, SigstoreSigned)
    assert [k.path for k in quay.keys] == [KEY, "/etc/pki/other.pub"]
    assert quay.identity.type is IdentityType.MATCH_REPOSITORY
    gpg, cosign = by[("docker", "registry.example.com:5000/x:tag")]
    assert isinstance(gpg, SignedBy) and gpg.keys[0].data == b"\0\0\0"
    assert gpg.identity == SignedIdentity()  # matchRepoDigestOrExact by default
    assert isinstance(cosign, SigstoreSigned)


@pytest.mark.parametrize(
    ("doc", "field", "why"),
    [
        ([], "(top level)", "JSON object"),
        ({"transports": {}}, "default", "missing"),
        ({"default": []}, "default", "non-empty list"),
        ({"default": [{"type": "reject"}], "extra": 1}, "(top level).extra", "unknown field"),
        ({"default": [{"type": "reject", "keyPath": "/k"}]}, "default[0].keyPath", "unknown field"),
        ({"default": [{"type": "acceptAll"}]}, "default[0].type", "not a requirement type"),
        ({"default": [{}]}, "default[0].type", "not a requirement type"),
        (
            {"default": [{"type": "reject"}], "transports": {"dokcer": {}}},
            "transports.dokcer",
            "unknown transport",
        ),
        (
            docker("quay.io", {"type": "signedBaseLayer"}),
            "[0].type",
            "signedBaseLayer is not supported",
        ),
        (
            docker("quay.io", {"type": "signedBy", "keyType": "X509Certificates", "keyPath": "/k"}),
            "[0].keyType",
            "'X509Certificates' is not supported",
        ),
        (
            docker("quay.io", {"type": "signedBy", "keyPath": "/k"}),
            "[0].keyType",
            "None is not supported",
        ),
        (
            docker("quay.io", {"type": "sigstoreSigned", "fulcio": {}, "rekorPublicKeyPath": "/r"}),
            "[0].fulcio",
            "keyless (fulcio)",
        ),
        (docker("quay.io", {"type": "sigstoreSigned", "pki": {}}), "[0].pki", "X.509 (pki)"),
        (
            docker(
                "quay.io", {"type": "sigstoreSigned", "keyPath": KEY, "rekorPublicKeyData": "AA=="}
            ),
            "[0].rekorPublicKeyData",
            "rekor",
        ),
        (docker("quay.io", {"type": "sigstoreSigned"}), "[0]", "exactly one of keyPath"),
        (
            docker("quay.io", {"type": "sigstoreSigned", "keyPath": KEY, "keyData": "AA=="}),
            "[0]",
            "exactly one of",
        ),
        (
            docker("quay.io", {"type": "sigstoreSigned", "keyPath": "rel.pub"}),
            "[0].keyPath",
            "absolute",
        ),
        (
            docker("quay.io", {"type": "sigstoreSigned", "keyPaths": []}),
            "[0].keyPaths",
            "non-empty list",
        ),
        (docker("quay.io", {"type": "sigstoreSigned", "keyData": "!!"}), "[0].keyData", "base64"),
        (
            docker(
                "quay.io",
                {"type": "sigstoreSigned", "keyPath": KEY, "signedIdentity": {"type": "x"}},
            ),
            "[0].signedIdentity.type",
            "not one of",
        ),
        (
            docker(
                "quay.io",
                {
                    "type": "sigstoreSigned",
                    "keyPath": KEY,
                    "signedIdentity": {"type": "matchExact", "dockerReference": "a/b:c"},
                },
            ),
            "[0].signedIdentity.dockerReference",
            "unknown field",
        ),
        (
            docker(
                "quay.io",
                {
                    "type": "sigstoreSigned",
                    "keyPath": KEY,
                    "signedIdentity": {"type": "exactReference", "dockerReference": "quay.io/a/b"},
                },
            ),
            "[0].signedIdentity.dockerReference",
            "must be host/repo:tag",
        ),
        (
            docker("https://quay.io", {"type": "reject"}),
            "['https://quay.io']",
            "not a docker scope",
        ),
        (
            {
                "default": [{"type": "reject"}],
                "transports": {"oci": {"relative/path": [{"type": "reject"}]}},
            },
            "transports.oci['relative/path']",
            "absolute",
        ),
    ],
)
def test_errors_name_file_and_field(doc: Any, field: str, why: str) -> None:
    message = policy_error(doc)
    assert field in message
    assert why in message


def test_invalid_json_and_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(
        '{"default": [{"type": "reject"}], "default": [{"type": "insecureAcceptAnything"}]}'
    )
    with pytest.raises(PolicyError, match=f"{path}: not valid JSON: duplicate key 'default'"):
        load_policy(path)
    path.write_text("{")
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(path)


def test_containers_image_fixture_policy_is_a_clear_error() -> None:
    """Its policy.json uses requirement types we cannot enforce: an error, never a silent accept."""
    with pytest.raises(PolicyError) as info:
        load_policy(VECTORS / "policy.json")
    message = str(info.value)
    assert str(VECTORS / "policy.json") in message
    assert "transports.docker['example.com/hardened'][1].keyType" in message
    assert "'signedByGPGKeys' is not supported" in message


def scope_of(policy_doc: dict[str, Any], image: str) -> str:
    return parse_policy(policy_doc, "p.json").scope_for(parse_reference(image)).label


ACCEPT = [{"type": "insecureAcceptAnything"}]


def test_docker_scope_precedence() -> None:
    doc: dict[str, Any] = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                "": ACCEPT,
                "*.com": ACCEPT,
                "*.example.com": ACCEPT,
                "registry.example.com": ACCEPT,
                "registry.example.com/team": ACCEPT,
                "registry.example.com/team/app": ACCEPT,
                "registry.example.com/team/app:1.0": ACCEPT,
                "registry.example.com/team/app@sha256:" + "b" * 64: ACCEPT,
                "localhost:5000": ACCEPT,
            }
        },
    }
    d = "docker:"
    assert (
        scope_of(doc, "registry.example.com/team/app:1.0")
        == d + "registry.example.com/team/app:1.0"
    )
    assert scope_of(doc, "registry.example.com/team/app:2.0") == d + "registry.example.com/team/app"
    assert (
        scope_of(doc, "registry.example.com/team/app@sha256:" + "b" * 64)
        == d + "registry.example.com/team/app@sha256:" + "b" * 64
    )
    assert scope_of(doc, "registry.example.com/team/web:1") == d + "registry.example.com/team"
    assert scope_of(doc, "registry.example.com/other/web:1") == d + "registry.example.com"
    assert scope_of(doc, "mirror.example.com/x") == d + "*.example.com"
    assert scope_of(doc, "a.b.other.com/x") == d + "*.com"
    assert scope_of(doc, "localhost:5000/x") == d + "localhost:5000"
    assert scope_of(doc, "quay.io/x") == "docker (default)"
    # "busybox" is docker.io/library/busybox, never an un-namespaced "busybox" scope.
    doc["transports"]["docker"]["docker.io/library"] = ACCEPT
    assert scope_of(doc, "busybox") == d + "docker.io/library"
    del doc["transports"]["docker"][""]
    assert scope_of(doc, "quay.io/x") == "default"


def test_oci_scope_precedence(tmp_path: Path) -> None:
    layout = tmp_path / "images" / "app"
    layout.mkdir(parents=True)
    doc: dict[str, Any] = {
        "default": [{"type": "reject"}],
        "transports": {
            "oci": {
                str(tmp_path / "images"): ACCEPT,
                f"{layout}:v1": ACCEPT,
            },
            "oci-archive": {"": ACCEPT},
        },
    }
    assert scope_of(doc, f"oci:{layout}:v1") == f"oci:{layout}:v1"
    assert scope_of(doc, f"oci:{layout}:v2") == f"oci:{tmp_path / 'images'}"
    assert scope_of(doc, f"oci:{tmp_path}/elsewhere") == "default"
    assert scope_of(doc, f"oci-archive:{tmp_path}/a.tar") == "oci-archive (default)"
    # A docker scope never applies to an oci reference.
    doc["transports"]["docker"] = {"": ACCEPT}
    assert scope_of(doc, f"oci:{tmp_path}/elsewhere") == "default"


def matches(kind: IdentityType, intended: str | None, signed: str, **fields: str) -> bool:
    identity = SignedIdentity(kind, **fields)
    want = None
    if intended is not None:
        ref = parse_reference(intended)
        want = parse_docker_name(str(ref))
    return identity_matches(identity, want, parse_docker_name(signed))


def test_signed_identity_semantics() -> None:
    exact = IdentityType.MATCH_REPO_DIGEST_OR_EXACT
    digest = "@sha256:" + "c" * 64
    assert matches(exact, "quay.io/a/b:1", "quay.io/a/b:1")
    assert not matches(exact, "quay.io/a/b:1", "quay.io/a/b:2")
    assert not matches(exact, "quay.io/a/b:1", "quay.io/a/b")  # a name-only identity
    assert matches(exact, "quay.io/a/b" + digest, "quay.io/a/b:anything")
    assert not matches(exact, "quay.io/a/b" + digest, "quay.io/a/c:anything")
    assert matches(exact, "busybox", "docker.io/library/busybox:latest")
    assert matches(IdentityType.MATCH_REPOSITORY, "quay.io/a/b:1", "quay.io/a/b")
    assert not matches(IdentityType.MATCH_REPOSITORY, "quay.io/a/b:1", "quay.io/a/bc:1")
    assert matches(IdentityType.MATCH_EXACT, "quay.io/a/b:1", "quay.io/a/b:1")
    assert not matches(IdentityType.MATCH_EXACT, "quay.io/a/b" + digest, "quay.io/a/b:1")
    ref = IdentityType.EXACT_REFERENCE
    assert matches(ref, None, "quay.io/a/b:1", docker_reference="quay.io/a/b:1")
    assert not matches(ref, "quay.io/a/b:1", "quay.io/a/b:2", docker_reference="quay.io/a/b:1")
    repo = IdentityType.EXACT_REPOSITORY
    assert matches(repo, None, "quay.io/a/b:2", docker_repository="quay.io/a/b")
    assert not matches(repo, "quay.io/a/b:1", "quay.io/a/c:1", docker_repository="quay.io/a/b")
    remap = IdentityType.REMAP_IDENTITY
    fields = {"prefix": "mirror.local:5000/vendor", "signed_prefix": "vendor.example.com"}
    assert matches(remap, "mirror.local:5000/vendor/app:1", "vendor.example.com/app:1", **fields)
    assert not matches(
        remap, "mirror.local:5000/vendor/app:1", "vendor.example.com/app:2", **fields
    )
    assert not matches(
        remap, "mirror.local:5000/vendorx/app:1", "vendor.example.com/app:1", **fields
    )
    # Without a docker identity (oci:), only the exact* types can match.
    assert not matches(IdentityType.MATCH_REPOSITORY, None, "quay.io/a/b:1")


def test_policy_json_roundtrip_of_requirement_docs() -> None:
    from podman_sd.trust.policy import requirement_to_json

    policy = parse_policy(docker("quay.io", {"type": "sigstoreSigned", "keyPath": KEY}), "p")
    doc = requirement_to_json(policy.scopes[0].requirements[0])
    assert doc == {
        "type": "sigstoreSigned",
        "keys": [KEY],
        "signedIdentity": {"type": "matchRepoDigestOrExact"},
    }
    json.dumps(doc)
