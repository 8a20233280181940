"""The policy engine: may this image, at this manifest digest, be pulled?

Every requirement of the most specific scope must be met (containers/image's
rule). For a signature requirement, one signature that a trusted key made and
whose claims fit the image is enough; signatures beside it that are invalid,
by unknown keys or about other images are not an error. The answer is a
record of the decision, stored with the image, or a TrustError whose one line
names the image, the policy scope and why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from podman_sd.errors import PodmanSdError, TrustError
from podman_sd.image.reference import ImageRef, parse_reference
from podman_sd.trust.payload import (
    SIMPLE_SIGNING_TYPE,
    PayloadError,
    check_claims,
    parse_claims,
)
from podman_sd.trust.policy import (
    InsecureAcceptAnything,
    Policy,
    Reject,
    Requirement,
    Scope,
    SignedBy,
    SigstoreSigned,
    load_policy,
)
from podman_sd.trust.source import CombinedSource, NoSignatures, SignatureSource, SigstoreSource

# fetch.pull.Verifier, spelled out so this package does not import the fetcher.
Verifier = Callable[[str, str], dict[str, Any]]


class _Refused(TrustError):
    """A refusal that already names the image and the scope."""


class _Check:
    """One evaluation: the image, its digest, and the scope, for every message."""

    def __init__(
        self,
        policy: Policy,
        scope: Scope,
        ref: ImageRef,
        digest: str,
        signatures: SignatureSource,
        scratch_dir: Path | None,
    ) -> None:
        self.policy = policy
        self.scope = scope
        self.ref = ref
        self.digest = digest
        self.signatures = signatures
        self.scratch_dir = scratch_dir

    def refuse(self, req: Requirement, why: str) -> TrustError:
        return _Refused(
            f"image {self.ref}: {why} (policy scope {self.scope.label}: {req.type_name}, "
            f"in {self.policy.path})"
        )

    def check(self, req: Requirement) -> dict[str, Any]:
        if isinstance(req, Reject):
            raise self.refuse(req, "rejected by the trust policy")
        if isinstance(req, InsecureAcceptAnything):
            return {"type": req.type_name}
        try:
            if isinstance(req, SigstoreSigned):
                return self._sigstore(req)
            return self._signed_by(req)
        except _Refused:
            raise
        except PodmanSdError as err:
            # A key that cannot be read, a signature store that cannot be reached.
            raise self.refuse(req, str(err)) from None

    def _no_valid(self, req: Requirement, kind: str, reasons: list[str]) -> TrustError:
        if not reasons:
            return self.refuse(req, f"not signed (no {kind} signatures for {self.digest})")
        return self.refuse(req, f"no valid {kind} signature: {'; '.join(reasons)}")

    def _sigstore(self, req: SigstoreSigned) -> dict[str, Any]:
        # Imported when needed: cryptography is slow to load, and most pulls
        # under a plain policy never check a signature.
        from podman_sd.trust.sigstore import load_public_key, verify_sigstore

        keys = [load_public_key(k.read(), k.describe()) for k in req.keys]
        reasons = []
        for index, sig in enumerate(self.signatures.sigstore_signatures(self.digest), start=1):
            try:
                key, claims = verify_sigstore(sig, keys)
                check_claims(claims, self.ref, self.digest, req.identity)
            except PayloadError as err:
                reasons.append(f"signature {index}: {err}")
                continue
            return self._record(req, key.key_id, key.source, index, claims.docker_reference)
        raise self._no_valid(req, "sigstore", reasons)

    def _signed_by(self, req: SignedBy) -> dict[str, Any]:
        from podman_sd.trust.gpg import gpg_verifier

        signatures = self.signatures.simple_signatures(self.ref, self.digest)
        if not signatures:
            raise self._no_valid(req, "GPG simple-signing", [])
        reasons = []
        with gpg_verifier([(k.describe(), k.read()) for k in req.keys], self.scratch_dir) as gpg:
            for index, signature in enumerate(signatures, start=1):
                try:
                    result = gpg.verify(signature)
                    claims = parse_claims(result.payload, SIMPLE_SIGNING_TYPE)
                    check_claims(claims, self.ref, self.digest, req.identity)
                except PayloadError as err:
                    reasons.append(f"signature {index}: {err}")
                    continue
                return self._record(
                    req, result.fingerprint, result.signing_key, index, claims.docker_reference
                )
        raise self._no_valid(req, "GPG simple-signing", reasons)

    def _record(
        self, req: SigstoreSigned | SignedBy, key: str, key_detail: str, index: int, identity: str
    ) -> dict[str, Any]:
        return {
            "type": req.type_name,
            # The key's ID (sigstore: SHA256 of the public key; GPG: the primary
            # key's fingerprint) and where it came from (key file; GPG subkey).
            "key": key,
            "keySource" if isinstance(req, SigstoreSigned) else "signingKey": key_detail,
            "signature": index,
            "identity": identity,
            "signedIdentity": req.identity.type.value,
        }


def evaluate(
    policy: Policy,
    ref: ImageRef,
    manifest_digest: str,
    signatures: SignatureSource,
    *,
    scratch_dir: Path | None = None,
) -> dict[str, Any]:
    """The decision record for REF at MANIFEST_DIGEST, or TrustError.

    SCRATCH_DIR holds the throwaway GnuPG home (default: the temporary folder).
    """
    scope = policy.scope_for(ref)
    check = _Check(policy, scope, ref, manifest_digest, _Cached(signatures), scratch_dir)
    results = [check.check(req) for req in scope.requirements]
    return {
        "policy": policy.path,
        "scope": scope.label,
        "digest": manifest_digest,
        "requirements": results,
    }


def describe(record: dict[str, Any]) -> str:
    """The decision in a few words, for the pull's journal line."""
    parts = []
    for req in record.get("requirements", []):
        if "key" in req:
            parts.append(f"{req['type']} by {req['key']} (signature {req['signature']})")
        else:
            parts.append(str(req.get("type")))
    return f"trusted by scope {record.get('scope')}: {', '.join(parts)}"


class _Cached:
    """Fetch each kind of signature at most once per evaluation."""

    def __init__(self, inner: SignatureSource) -> None:
        self.inner = inner
        self._sigstore: dict[str, list[Any]] = {}
        self._simple: dict[str, list[bytes]] = {}

    def sigstore_signatures(self, manifest_digest: str) -> list[Any]:
        if manifest_digest not in self._sigstore:
            self._sigstore[manifest_digest] = self.inner.sigstore_signatures(manifest_digest)
        return self._sigstore[manifest_digest]

    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        if manifest_digest not in self._simple:
            self._simple[manifest_digest] = self.inner.simple_signatures(reference, manifest_digest)
        return self._simple[manifest_digest]


class _LazyLookaside:
    """The lookaside stores, configured on first use: reading registries.d
    (YAML) is wasted on pulls that no signedBy requirement covers."""

    def simple_signatures(self, reference: ImageRef, manifest_digest: str) -> list[bytes]:
        from podman_sd.trust.lookaside import LookasideSignatures, load_registries_d

        return LookasideSignatures(load_registries_d()).simple_signatures(
            reference, manifest_digest
        )


def default_signature_source(sigstore: SigstoreSource | None = None) -> SignatureSource:
    """SIGSTORE's cosign attachments (e.g. the registry client) plus the lookaside stores."""
    return CombinedSource(sigstore or NoSignatures(), _LazyLookaside())


def policy_verifier(
    signatures: SignatureSource,
    policy: Policy | None = None,
    *,
    scratch_dir: Path | None = None,
) -> Verifier:
    """The ``verify`` argument of ``fetch.pull.pull``.

    The policy is read now (default: /etc/podman-sd/policy.json), so a broken
    policy stops the pull before anything is fetched.
    """
    loaded = policy if policy is not None else load_policy()

    def verify(reference: str, manifest_digest: str) -> dict[str, Any]:
        return evaluate(
            loaded, parse_reference(reference), manifest_digest, signatures, scratch_dir=scratch_dir
        )

    return verify
