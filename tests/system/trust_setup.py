"""Signed images inside a test host, made with signers that are not ours.

GPG simple signing: a throwaway GnuPG key made in the test host and
``skopeo copy --sign-by``, which writes the signature into the lookaside
store that /etc/containers/registries.d names. Sigstore: Debian's skopeo
refuses to make those ("Debian-local change: sigstore disabled"), so the test
signs with ``cryptography`` (ECDSA P-256, as ``cosign sign --key`` does) and
uploads cosign's attachment layout (an image manifest at tag
``sha256-HEX.sig`` whose layer is the payload and whose layer annotation is
the signature) with plain registry API calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.system.registry_setup import BASIC, PASSWORD, USER
from tests.testhost import TestHost

COSIGN_PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_TYPE = "cosign container image signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

LOOKASIDE = "/srv/sigstore"
KEYS = "/srv/keys"

# skopeo reads /etc/containers/registries.d; podman-sd reads it too when
# /etc/podman-sd/registries.d does not exist (as after `make install`).
REGISTRIES_D = f"""\
docker:
  {BASIC}:
    lookaside-staging: file://{LOOKASIDE}
    lookaside: file://{LOOKASIDE}
"""

MAKE_GPG_KEY = r"""
name=$1
export GNUPGHOME=/srv/gnupg/$name
mkdir -p -m 0700 "$GNUPGHOME"
gpg --batch --no-tty --passphrase '' --quick-gen-key "$name <$name@example.com>" ed25519 sign never 2>/dev/null
fpr=$(gpg --batch --no-tty --with-colons --list-keys | awk -F: '/^fpr:/ {print $10; exit}')
mkdir -p /srv/keys
# The fetch helper (its own unprivileged user) reads the key through the policy.
gpg --batch --no-tty --armor --export "$fpr" > "/srv/keys/$name.asc"
chmod 0644 "/srv/keys/$name.asc"
echo "$fpr"
"""

# Uploads blobs and a manifest with the distribution API (stdlib only, run by
# the test host's python3): argv REGISTRY REPO TAG USER PASSWORD CA, stdin
# {"blobs": [base64, …], "manifest": base64, "mediaType": …}.
PUSH_ARTIFACT = r"""
import base64, hashlib, json, ssl, sys, urllib.request
registry, repo, tag, user, password, ca = sys.argv[1:7]
spec = json.load(sys.stdin)
context = ssl.create_default_context(cafile=ca)
auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

def call(method, url, data, headers=None):
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": auth, **(headers or {})}
    )
    with urllib.request.urlopen(request, context=context) as response:
        return response.headers

for blob in map(base64.b64decode, spec["blobs"]):
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    location = call("POST", f"https://{registry}/v2/{repo}/blobs/uploads/", b"")["Location"]
    if location.startswith("/"):
        location = f"https://{registry}{location}"
    separator = "&" if "?" in location else "?"
    call("PUT", f"{location}{separator}digest={digest}", blob,
         {"Content-Type": "application/octet-stream"})
call("PUT", f"https://{registry}/v2/{repo}/manifests/{tag}",
     base64.b64decode(spec["manifest"]), {"Content-Type": spec["mediaType"]})
"""


@dataclass(frozen=True)
class CosignKey:
    private: ec.EllipticCurvePrivateKey
    path: str  # the public key's PEM file in the test host

    def sign(self, payload: bytes) -> str:
        """The base64 signature ``cosign sign --key`` puts into the annotation."""
        raw = self.private.sign(payload, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode()


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def setup_lookaside(host: TestHost) -> None:
    host.write_file("/etc/containers/registries.d/test.yaml", REGISTRIES_D)
    host.run("mkdir", "-p", LOOKASIDE)


def make_gpg_key(host: TestHost, name: str) -> str:
    """A GnuPG key in /srv/gnupg/NAME, exported to /srv/keys/NAME.asc; its fingerprint."""
    fingerprint = host.run("/bin/sh", "-ec", MAKE_GPG_KEY, "gpgkey", name).stdout.strip()
    assert len(fingerprint) == 40, fingerprint
    return fingerprint


def push_gpg_signed(host: TestHost, source: str, dest: str, signer: str, fingerprint: str) -> None:
    """``skopeo copy --sign-by``: the signature lands in the lookaside store."""
    host.run(
        "skopeo", "copy", "--quiet", "--dest-cert-dir=/srv/tls/certs",
        f"--dest-creds={USER}:{PASSWORD}", "--sign-by", fingerprint, source, f"docker://{dest}",
        env={"GNUPGHOME": f"/srv/gnupg/{signer}"},
    )  # fmt: skip
    host.run("chmod", "-R", "a+rX", LOOKASIDE)


def make_cosign_key(host: TestHost, name: str) -> CosignKey:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = f"{KEYS}/{name}.pub"
    host.write_file(path, pem.decode())
    return CosignKey(private, path)


def cosign_payload(digest: str, reference: str) -> bytes:
    """The simple-signing payload cosign signs for REFERENCE at DIGEST."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": COSIGN_TYPE,
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def attach_cosign_signature(
    host: TestHost, repo: str, digest: str, payload: bytes, signature: str
) -> None:
    """Store PAYLOAD and SIGNATURE as cosign does: BASIC/REPO:sha256-HEX.sig."""
    config = b"{}"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": COSIGN_PAYLOAD_TYPE,
                    "digest": sha256(payload),
                    "size": len(payload),
                    "annotations": {COSIGN_SIGNATURE_ANNOTATION: signature},
                }
            ],
        }
    ).encode()
    spec = {
        "blobs": [base64.b64encode(blob).decode() for blob in (config, payload)],
        "manifest": base64.b64encode(manifest).decode(),
        "mediaType": OCI_MANIFEST,
    }
    tag = f"{digest.replace(':', '-')}.sig"
    host.run(
        "/usr/bin/python3", "-c", PUSH_ARTIFACT, BASIC, repo, tag, USER, PASSWORD,
        "/srv/tls/ca.crt", input=json.dumps(spec),
    )  # fmt: skip


def remote_digest(host: TestHost, reference: str) -> str:
    """The manifest digest of REFERENCE in the test registry, as skopeo sees it."""
    raw = host.run(
        "skopeo", "inspect", "--raw", "--cert-dir=/srv/tls/certs",
        f"--creds={USER}:{PASSWORD}", f"docker://{reference}",
    ).stdout  # fmt: skip
    return sha256(raw.encode())


def remote_blobs(host: TestHost, reference: str, *, own_only: bool = False) -> set[str]:
    """The digests of REFERENCE's manifest, config and layers.

    OWN_ONLY: the manifest and config only, which differ between our test
    images even where a layer is the same blob.
    """
    raw = host.run(
        "skopeo", "inspect", "--raw", "--cert-dir=/srv/tls/certs",
        f"--creds={USER}:{PASSWORD}", f"docker://{reference}",
    ).stdout  # fmt: skip
    doc = json.loads(raw)
    own = {sha256(raw.encode()), doc["config"]["digest"]}
    return own if own_only else own | {layer["digest"] for layer in doc["layers"]}


def stored_blobs(host: TestHost) -> set[str]:
    out = host.run("/bin/sh", "-c", "ls /var/lib/podman-sd/blobs/sha256 2>/dev/null || true").stdout
    return {f"sha256:{name}" for name in out.split()}


def stored_references(host: TestHost) -> set[str]:
    listing = json.loads(host.run("podman-sd", "image", "list", "--json").stdout)
    return {record["reference"] for record in listing}
