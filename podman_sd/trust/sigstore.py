"""cosign (sigstore) signatures made with a key: verified with ``cryptography``.

cosign signs the payload bytes themselves (the layer blob of the
``sha256-HEX.sig`` attachment) and stores the base64 signature in the layer
annotation ``dev.cosignproject.cosign/signature``. Like containers/image, we
hash with SHA-256 whatever the key: ECDSA (ASN.1 DER signatures), RSA
PKCS#1 v1.5, and Ed25519 (which signs the message, not a hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from podman_sd.errors import PolicyError
from podman_sd.trust.payload import COSIGN_TYPE, Claims, PayloadError, parse_claims
from podman_sd.trust.source import COSIGN_PAYLOAD_TYPE, SigstoreSignature

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class TrustedKey:
    key: PublicKey
    # SHA256:HEX of the DER SubjectPublicKeyInfo, the way `cosign` and
    # sigstore's tooling identify a key.
    key_id: str
    source: str


def load_public_key(pem: bytes, source: str) -> TrustedKey:
    """Parse a PEM public key for cosign; PolicyError naming SOURCE if unusable."""
    try:
        key = serialization.load_pem_public_key(pem)
    except UnsupportedAlgorithm:
        raise PolicyError(f"{source}: a public key of a type cosign does not use") from None
    except ValueError:  # its text is OpenSSL's error stack, not for users
        marker = b"-----BEGIN PUBLIC KEY-----"
        why = "the key in it cannot be read" if marker in pem else f"no {marker.decode()} line"
        raise PolicyError(f"{source}: not a PEM public key ({why})") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise PolicyError(f"{source}: the curve {key.curve.name} is not supported")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise PolicyError(f"{source}: a {key.key_size}-bit RSA key is too weak")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise PolicyError(f"{source}: {type(key).__name__} keys are not supported for cosign")
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TrustedKey(key, f"SHA256:{hashlib.sha256(der).hexdigest()}", source)


def signature_valid(key: PublicKey, payload: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, payload)
    except InvalidSignature:
        return False
    return True


def verify_sigstore(sig: SigstoreSignature, keys: list[TrustedKey]) -> tuple[TrustedKey, Claims]:
    """The key that made SIG and the payload's claims; PayloadError with a reason if none did.

    The signature is checked before the payload is parsed: nothing an
    untrusted party wrote is interpreted until a trusted key vouches for it.
    """
    if sig.media_type != COSIGN_PAYLOAD_TYPE:
        raise PayloadError(f"an attachment of type {sig.media_type!r}, not a cosign signature")
    try:
        raw = base64.b64decode(sig.signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError("the signature annotation is not valid base64") from None
    for trusted in keys:
        if signature_valid(trusted.key, sig.payload, raw):
            return trusted, parse_claims(sig.payload, COSIGN_TYPE)
    raise PayloadError("not signed by a trusted key (or corrupted)")
