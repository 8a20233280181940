"""Signature policy end to end (issue 5) in a booted test host: the real
docker-registry, images signed by skopeo with GPG and by the test in cosign's
attachment layout, `podman-sd trust set`, pulls by the unprivileged fetch
helper, and a pod whose image the policy refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.system.podhelpers import write_pod
from tests.system.registry_setup import BASIC, PASSWORD, USER, push, start_registries
from tests.system.trust_setup import (
    CosignKey,
    attach_cosign_signature,
    cosign_payload,
    make_cosign_key,
    make_gpg_key,
    push_gpg_signed,
    remote_blobs,
    remote_digest,
    setup_lookaside,
    stored_blobs,
    stored_references,
)
from tests.testhost import REPO, TestHost
from tests.testhost.images import build_busybox_layout

pytestmark = pytest.mark.system

POLICY = "/etc/podman-sd/policy.json"


@dataclass(frozen=True)
class Signers:
    gpg: str  # fingerprint of the key skopeo signs with
    gpg_stranger: str
    cosign: CosignKey
    cosign_stranger: CosignKey


@pytest.fixture(scope="module")
def shipped_policy(installed_host: TestHost) -> str:
    """The policy as `make install` left it, read before any test changes it."""
    return installed_host.run("cat", POLICY).stdout


@pytest.fixture(scope="module")
def host(installed_host: TestHost, shipped_policy: str) -> Iterator[TestHost]:
    start_registries(installed_host)
    setup_lookaside(installed_host)
    # One image per scenario, each with its own command and so its own config
    # and manifest digests (built in the same second, their layers may be
    # the same blob).
    for name, cmd in (("gpg", "/bin/true"), ("cosign", "/bin/false"), ("pod", "/bin/sh")):
        build_busybox_layout(installed_host, f"/srv/images/{name}", "latest", cmd)
    yield installed_host


@pytest.fixture(scope="module")
def signers(host: TestHost) -> Signers:
    return Signers(
        gpg=make_gpg_key(host, "signer"),
        gpg_stranger=make_gpg_key(host, "stranger"),
        cosign=make_cosign_key(host, "cosign"),
        cosign_stranger=make_cosign_key(host, "cosign-stranger"),
    )


def pull(host: TestHost, reference: str) -> str:
    return host.run("podman-sd", "image", "pull", reference).stdout.strip()


def refused(host: TestHost, reference: str) -> str:
    """Pull REFERENCE, expecting the policy to refuse it; the one line that says why.

    Afterwards the store holds nothing of the image: no record, no new blob.
    """
    blobs_before = stored_blobs(host)
    result = host.run("podman-sd", "image", "pull", reference, check=False)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # The helper's own line, not the systemd-run command line that started it.
    assert lines[0].startswith(f"podman-sd: error: podman-sd-fetch: image {reference}: "), lines
    assert "systemd-run" not in lines[0]
    assert reference not in stored_references(host)
    assert stored_blobs(host) == blobs_before
    assert host.run("ls", "-A", "/var/lib/podman-sd/blobs/incoming").stdout.strip() == ""
    return lines[0]


def trust(host: TestHost, kind: str, scope: str, *keys: str) -> None:
    pubkeys = [arg for key in keys for arg in ("--pubkeyfile", key)]
    host.run("podman-sd", "trust", "set", "--type", kind, *pubkeys, scope)


def inspect(host: TestHost, reference: str) -> dict[str, object]:
    return dict(json.loads(host.run("podman-sd", "image", "inspect", reference).stdout))


def test_shipped_policy_rejects_everything(host: TestHost, shipped_policy: str) -> None:
    assert json.loads(shipped_policy) == json.loads((REPO / "packaging/policy.json").read_text())
    build_busybox_layout(host, "/srv/images/local", "latest", "/bin/echo")
    push(host, "oci:/srv/images/local:latest", f"{BASIC}/local:latest", f"{USER}:{PASSWORD}")
    for reference in ("oci:/srv/images/local:latest", f"{BASIC}/local:latest"):
        line = refused(host, reference)
        assert "rejected by the trust policy" in line
        assert f"(policy scope default: reject, in {POLICY})" in line, line
    shown = host.run("podman-sd", "trust", "show").stdout
    assert "reject" in shown


def test_gpg_simple_signing_end_to_end(host: TestHost, signers: Signers) -> None:
    image = f"{BASIC}/gpg:latest"
    push_gpg_signed(host, "oci:/srv/images/gpg:latest", image, "signer", signers.gpg)
    digest = remote_digest(host, image)
    # skopeo wrote the signature where registries.d says, as containers/image lays it out.
    host.run("test", "-s", f"/srv/sigstore/gpg@sha256={digest[7:]}/signature-1")
    scope = f"{BASIC}/gpg"

    # Under another key first, while the store holds no image at all.
    trust(host, "signedBy", scope, "/srv/keys/stranger.asc")
    image_blobs = remote_blobs(host, image)
    line = refused(host, image)
    assert "no valid GPG simple-signing signature" in line
    assert f"(policy scope docker:{scope}: signedBy, in {POLICY})" in line, line
    assert not image_blobs & stored_blobs(host)

    trust(host, "signedBy", scope, "/srv/keys/signer.asc")
    assert pull(host, image) == digest
    verification = inspect(host, image)["verification"]
    assert isinstance(verification, dict)
    assert verification["digest"] == digest
    assert verification["scope"] == f"docker:{scope}"
    assert verification["policy"] == POLICY
    [requirement] = verification["requirements"]
    assert requirement["type"] == "signedBy"
    assert requirement["key"] == signers.gpg
    assert requirement["identity"] == image
    # The decision is in the helper's journal line too.
    log = host.run(
        "journalctl", "SYSLOG_IDENTIFIER=podman-sd-fetch", "IMAGE_NAME=" + image,
        "-o", "cat", "--no-pager",
    ).stdout  # fmt: skip
    assert f"signedBy by {signers.gpg}" in log


def test_sigstore_end_to_end(host: TestHost, signers: Signers) -> None:
    image = f"{BASIC}/cosign:latest"
    push(host, "oci:/srv/images/cosign:latest", image, f"{USER}:{PASSWORD}")
    digest = remote_digest(host, image)
    scope = f"{BASIC}/cosign"
    trust(host, "sigstoreSigned", scope, signers.cosign.path)

    # Not signed yet: no sha256-HEX.sig attachment in the repository.
    own_blobs = remote_blobs(host, image, own_only=True)
    line = refused(host, image)
    assert f"not signed (no sigstore signatures for {digest})" in line
    assert f"(policy scope docker:{scope}: sigstoreSigned, in {POLICY})" in line, line
    assert not own_blobs & stored_blobs(host)

    payload = cosign_payload(digest, image)
    attach_cosign_signature(host, "cosign", digest, payload, signers.cosign.sign(payload))

    trust(host, "sigstoreSigned", scope, signers.cosign_stranger.path)
    line = refused(host, image)
    assert "no valid sigstore signature: signature 1: not signed by a trusted key" in line
    assert f"policy scope docker:{scope}" in line
    assert not own_blobs & stored_blobs(host)

    trust(host, "sigstoreSigned", scope, signers.cosign.path)
    assert pull(host, image) == digest
    verification = inspect(host, image)["verification"]
    assert isinstance(verification, dict)
    assert verification["digest"] == digest
    [requirement] = verification["requirements"]
    assert requirement["type"] == "sigstoreSigned"
    assert requirement["key"].startswith("SHA256:")
    assert requirement["keySource"] == signers.cosign.path
    assert requirement["identity"] == image


@pytest.mark.parametrize("case", ["other-digest", "other-repository", "corrupted"])
def test_sigstore_bad_signatures_are_refused(host: TestHost, signers: Signers, case: str) -> None:
    repo = f"cosign-{case}"
    image = f"{BASIC}/{repo}:latest"
    push(host, "oci:/srv/images/cosign:latest", image, f"{USER}:{PASSWORD}")
    digest = remote_digest(host, image)
    claimed_digest, identity = digest, image
    if case == "other-digest":
        claimed_digest = f"sha256:{'0' * 64}"
    elif case == "other-repository":
        identity = f"{BASIC}/somewhere-else:latest"
    payload = cosign_payload(claimed_digest, identity)
    signature = signers.cosign.sign(payload)
    if case == "corrupted":
        raw = bytearray(payload)
        raw[-3] ^= 1  # the signature no longer covers these bytes
        payload = bytes(raw)
    attach_cosign_signature(host, repo, digest, payload, signature)
    trust(host, "sigstoreSigned", f"{BASIC}/{repo}", signers.cosign.path)
    line = refused(host, image)
    assert "no valid sigstore signature: signature 1: " in line
    assert f"(policy scope docker:{BASIC}/{repo}: sigstoreSigned, in {POLICY})" in line, line
    reason = {
        "other-digest": claimed_digest,
        "other-repository": "somewhere-else",
        "corrupted": "not signed by a trusted key",
    }[case]
    assert reason in line


def test_pod_with_a_refused_image_fails_and_says_why(host: TestHost, signers: Signers) -> None:
    image = f"{BASIC}/pod:latest"
    push(host, "oci:/srv/images/pod:latest", image, f"{USER}:{PASSWORD}")
    trust(host, "sigstoreSigned", f"{BASIC}/pod", signers.cosign.path)
    write_pod(
        host,
        "untrusted",
        f"""\
apiVersion: v1
kind: Pod
metadata:
  name: untrusted
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {image}
    command: ["/bin/sh", "-c", "echo must-not-run; exec sleep 1000"]
""",
    )
    started = host.run("systemctl", "start", "pod@untrusted", check=False)
    assert started.returncode != 0
    status = host.run(
        "systemctl", "status", "pod@untrusted", "--no-pager", "-l", "-n", "30", check=False
    ).stdout
    why = (
        f"podman-sd: error: podman-sd-fetch: image {image}: not signed (no sigstore signatures for"
    )
    assert why in status, status
    assert f"policy scope docker:{BASIC}/pod" in status, status
    # Its Status: says why too (it said "pulling ..." before).
    assert f'Status: "failed: podman-sd-fetch: image {image}: not signed' in status, status
    assert "Traceback" not in status
    log = host.run("journalctl", "-u", "pod@untrusted", "-o", "cat", "--no-pager").stdout
    assert "Traceback" not in log and "must-not-run" not in log
    active = host.run("systemctl", "is-active", "pod@untrusted", check=False).stdout.strip()
    assert active in ("failed", "inactive")
    units = host.run(
        "systemctl", "list-units", "--all", "--plain", "--no-legend", "pod-untrusted*"
    ).stdout
    assert " active " not in units, units
    helpers = host.run(
        "systemctl", "list-units", "--state=active", "--plain", "--no-legend", "podman-sd-fetch-*"
    ).stdout
    assert helpers.strip() == "", helpers
    assert image not in stored_references(host)
