"""The trust policy: containers-policy.json(5), parsed into frozen dataclasses.

A policy names, per transport and scope, the requirements an image must meet.
Anything we cannot enforce (an unknown field, ``signedBaseLayer``, X.509 or
keyless sigstore) is an error naming the file and the field: a policy that
says more than we check must never be read as one that says less.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podman_sd import paths
from podman_sd.errors import PolicyError
from podman_sd.image.reference import ImageRef, Transport

POLICY_FILE = "policy.json"
MAX_POLICY_SIZE = 4 * 1024 * 1024

# Transports of containers/image that podman-sd cannot pull from. Their scopes
# are parsed (a policy shared with podman stays readable) and never used.
FOREIGN_TRANSPORTS = frozenset(
    {
        "atomic",
        "containers-storage",
        "dir",
        "docker-archive",
        "docker-daemon",
        "ostree",
        "sif",
        "tarball",
    }
)
PATH_TRANSPORTS = frozenset({Transport.OCI.value, Transport.OCI_ARCHIVE.value, "dir"})

# A docker scope: a host (or *.domain), optionally a repository path, and
# optionally a tag or digest; the reference is never normalized here.
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?)"
_PATH = r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_DOCKER_SCOPE_RE = re.compile(
    rf"^{_HOST}{_PATH}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?$"
)
_WILDCARD_SCOPE_RE = re.compile(rf"^\*\.{_HOST}$")


class IdentityType(enum.Enum):
    MATCH_REPO_DIGEST_OR_EXACT = "matchRepoDigestOrExact"
    MATCH_REPOSITORY = "matchRepository"
    MATCH_EXACT = "matchExact"
    REMAP_IDENTITY = "remapIdentity"
    EXACT_REFERENCE = "exactReference"
    EXACT_REPOSITORY = "exactRepository"


@dataclass(frozen=True)
class SignedIdentity:
    """How the identity a signature claims must relate to the pulled reference."""

    type: IdentityType = IdentityType.MATCH_REPO_DIGEST_OR_EXACT
    docker_reference: str | None = None  # exactReference
    docker_repository: str | None = None  # exactRepository
    prefix: str | None = None  # remapIdentity
    signed_prefix: str | None = None  # remapIdentity

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type.value}
        for key, value in (
            ("dockerReference", self.docker_reference),
            ("dockerRepository", self.docker_repository),
            ("prefix", self.prefix),
            ("signedPrefix", self.signed_prefix),
        ):
            if value is not None:
                doc[key] = value
        return doc


@dataclass(frozen=True)
class KeySource:
    """One trusted key (or GPG keyring): a file, or data inline in the policy."""

    path: str | None = None
    data: bytes | None = None

    def describe(self) -> str:
        return self.path if self.path is not None else "keyData"

    def read(self, max_size: int = MAX_POLICY_SIZE) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            with open(self.path, "rb") as f:
                data = f.read(max_size + 1)
        except OSError as err:
            raise PolicyError(f"cannot read the key {self.path}: {err.strerror}") from None
        if len(data) > max_size:
            raise PolicyError(f"the key {self.path} is larger than {max_size} bytes")
        return data


@dataclass(frozen=True)
class Reject:
    type_name = "reject"


@dataclass(frozen=True)
class InsecureAcceptAnything:
    type_name = "insecureAcceptAnything"


@dataclass(frozen=True)
class SigstoreSigned:
    """Signed with a cosign key in PEM (ECDSA, Ed25519 or RSA)."""

    keys: tuple[KeySource, ...]
    identity: SignedIdentity = SignedIdentity()
    type_name = "sigstoreSigned"


@dataclass(frozen=True)
class SignedBy:
    """GPG simple signing (``signedBy`` with ``keyType: GPGKeys``)."""

    keys: tuple[KeySource, ...]
    identity: SignedIdentity = SignedIdentity()
    type_name = "signedBy"


Requirement = Reject | InsecureAcceptAnything | SigstoreSigned | SignedBy


@dataclass(frozen=True)
class Scope:
    """The requirements of one scope; transport "" is the policy's default."""

    transport: str
    scope: str
    requirements: tuple[Requirement, ...]

    @property
    def label(self) -> str:
        if not self.transport:
            return "default"
        return f"{self.transport}:{self.scope}" if self.scope else f"{self.transport} (default)"


@dataclass(frozen=True)
class Policy:
    path: str
    default: Scope
    scopes: tuple[Scope, ...]

    def scope_for(self, ref: ImageRef) -> Scope:
        """The most specific scope that applies to REF (containers-policy.json(5))."""
        by_name = {(s.transport, s.scope): s for s in self.scopes}
        transport = ref.transport.value
        for candidate in scope_candidates(ref):
            if (transport, candidate) in by_name:
                return by_name[(transport, candidate)]
        return by_name.get((transport, ""), self.default)

    def all_scopes(self) -> Iterator[Scope]:
        yield self.default
        yield from self.scopes


def scope_candidates(ref: ImageRef) -> list[str]:
    """The scopes that match REF, most specific first (without the transport default)."""
    if ref.transport is Transport.DOCKER:
        name = f"{ref.registry}/{ref.repository}"
        res = [str(ref)]
        if ref.tag and ref.digest:
            res += [f"{name}:{ref.tag}", f"{name}@{ref.digest}"]
        # Repository, each parent namespace, then the host (with its port).
        while True:
            res.append(name)
            if "/" not in name:
                break
            name = name.rpartition("/")[0]
        # Then wildcard domains, without the port: *.example.com, *.com.
        host = name.partition(":")[0]
        while "." in host:
            host = host.partition(".")[2]
            res.append(f"*.{host}")
        return res
    # oci, oci-archive: the resolved path (with the tag), then each parent.
    path = os.path.realpath(ref.path)
    res = [f"{path}:{ref.tag}"] if ref.tag else []
    while path != "/":
        res.append(path)
        path = os.path.dirname(path)
    return res


# --- parsing -----------------------------------------------------------------


class _Reader:
    """Parsing helpers that name the file and the field in every error."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, field: str, message: str) -> PolicyError:
        return PolicyError(f"{self.path}: {field}: {message}")

    def obj(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be a JSON object, not {_kind(value)}")
        return value

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(field, f"must be a non-empty string, not {_kind(value)}")
        return value

    def known(self, doc: dict[str, Any], field: str, allowed: set[str], hint: str = "") -> None:
        for key in doc:
            if key not in allowed:
                raise self.fail(
                    f"{field}.{key}",
                    f"unknown field (allowed: {', '.join(sorted(allowed))}){hint}",
                )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A json ``object_pairs_hook`` refusing duplicate keys: two readers of
    a policy or a signature payload must never disagree about a value."""
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f"duplicate key {key!r}")
        doc[key] = value
    return doc


def loads_json(text: bytes, where: str) -> Any:
    """JSON with duplicate keys refused (two readers must never disagree)."""
    try:
        return json.loads(text, object_pairs_hook=no_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as err:
        raise PolicyError(f"{where}: not valid JSON: {err}") from None


def policy_path() -> Path:
    return paths.config_dir() / POLICY_FILE


def load_policy(path: Path | None = None) -> Policy:
    path = path or policy_path()
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_POLICY_SIZE + 1)
    except FileNotFoundError:
        raise PolicyError(
            f"no trust policy at {path}: every image is refused until one is installed "
            "(the package ships one that rejects everything; see podman-sd trust set)"
        ) from None
    except OSError as err:
        raise PolicyError(f"cannot read the trust policy {path}: {err.strerror}") from None
    if len(data) > MAX_POLICY_SIZE:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_SIZE} bytes")
    return parse_policy(loads_json(data, str(path)), str(path))


def parse_policy(doc: Any, path: str) -> Policy:
    r = _Reader(path)
    doc = r.obj(doc, "(top level)")
    r.known(doc, "(top level)", {"default", "transports"})
    if "default" not in doc:
        raise r.fail("default", "missing (the requirements of images no scope names)")
    default = Scope("", "", _requirements(r, doc["default"], "default"))
    scopes: list[Scope] = []
    transports = r.obj(doc.get("transports", {}), "transports")
    for transport, scope_map in transports.items():
        field = f"transports.{transport}"
        if transport not in {t.value for t in Transport} | FOREIGN_TRANSPORTS:
            raise r.fail(field, "unknown transport")
        for scope, reqs in r.obj(scope_map, field).items():
            sfield = f"{field}[{scope!r}]"
            _check_scope(r, transport, scope, sfield)
            scopes.append(Scope(transport, scope, _requirements(r, reqs, sfield)))
    return Policy(path, default, tuple(scopes))


def _check_scope(r: _Reader, transport: str, scope: str, field: str) -> None:
    if scope == "":
        return
    if transport in PATH_TRANSPORTS:
        path, _, _tag = scope.partition(":")
        if not path.startswith("/") or os.path.normpath(path) != path or path == "/":
            raise r.fail(field, 'a path scope must be an absolute, normalized path (or "")')
    elif transport == Transport.DOCKER.value and not (
        _DOCKER_SCOPE_RE.match(scope) or _WILDCARD_SCOPE_RE.match(scope)
    ):
        raise r.fail(
            field,
            "not a docker scope (host[:port][/namespace[/repository[:tag|@digest]]], or *.domain)",
        )


def _requirements(r: _Reader, value: Any, field: str) -> tuple[Requirement, ...]:
    if not isinstance(value, list) or not value:
        raise r.fail(field, "must be a non-empty list of requirements")
    return tuple(_requirement(r, item, f"{field}[{i}]") for i, item in enumerate(value))


_UNSUPPORTED_SIGSTORE = {
    "fulcio": "keyless (fulcio) verification",
    "pki": "X.509 (pki) verification",
    "rekorPublicKeyPath": "rekor transparency-log checks",
    "rekorPublicKeyPaths": "rekor transparency-log checks",
    "rekorPublicKeyData": "rekor transparency-log checks",
    "rekorPublicKeyDatas": "rekor transparency-log checks",
}


def _requirement(r: _Reader, value: Any, field: str) -> Requirement:
    doc = r.obj(value, field)
    kind = doc.get("type")
    if kind == "reject":
        r.known(doc, field, {"type"})
        return Reject()
    if kind == "insecureAcceptAnything":
        r.known(doc, field, {"type"})
        return InsecureAcceptAnything()
    if kind == "sigstoreSigned":
        for key, what in _UNSUPPORTED_SIGSTORE.items():
            if key in doc:
                raise r.fail(f"{field}.{key}", f"{what} is not supported by podman-sd; use keys")
        r.known(
            doc,
            field,
            {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "signedIdentity"},
        )
        keys = _keys(r, doc, field, ("keyPath", "keyPaths", "keyData", "keyDatas"))
        return SigstoreSigned(keys, _identity(r, doc.get("signedIdentity"), field))
    if kind == "signedBy":
        r.known(doc, field, {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"})
        key_type = doc.get("keyType")
        if key_type != "GPGKeys":
            raise r.fail(
                f"{field}.keyType",
                f"{key_type!r} is not supported (podman-sd verifies signedBy with GPGKeys only)",
            )
        keys = _keys(r, doc, field, ("keyPath", "keyPaths", "keyData"))
        return SignedBy(keys, _identity(r, doc.get("signedIdentity"), field))
    if kind == "signedBaseLayer":
        raise r.fail(f"{field}.type", "signedBaseLayer is not supported by podman-sd")
    raise r.fail(
        f"{field}.type",
        f"{kind!r} is not a requirement type podman-sd supports "
        "(reject, insecureAcceptAnything, sigstoreSigned, signedBy)",
    )


def _keys(
    r: _Reader, doc: dict[str, Any], field: str, allowed: tuple[str, ...]
) -> tuple[KeySource, ...]:
    present = [k for k in allowed if k in doc]
    if len(present) != 1:
        raise r.fail(field, f"needs exactly one of {', '.join(allowed)}")
    key = present[0]
    kfield = f"{field}.{key}"
    value = doc[key]
    items = value if key.endswith("s") else [value]
    if key.endswith("s") and (not isinstance(value, list) or not value):
        raise r.fail(kfield, "must be a non-empty list")
    result = []
    for i, item in enumerate(items):
        ifield = f"{kfield}[{i}]" if key.endswith("s") else kfield
        text = r.string(item, ifield)
        if key.startswith("keyPath"):
            if not text.startswith("/"):
                raise r.fail(ifield, f"{text!r} must be an absolute path")
            result.append(KeySource(path=text))
        else:
            result.append(KeySource(data=_base64(r, text, ifield)))
    return tuple(result)


def _base64(r: _Reader, text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise r.fail(field, "is not valid base64") from None


def _identity(r: _Reader, value: Any, field: str) -> SignedIdentity:
    if value is None:
        return SignedIdentity()
    field = f"{field}.signedIdentity"
    doc = r.obj(value, field)
    try:
        kind = IdentityType(doc.get("type"))
    except ValueError:
        raise r.fail(
            f"{field}.type",
            f"{doc.get('type')!r} is not one of {', '.join(t.value for t in IdentityType)}",
        ) from None
    if kind is IdentityType.EXACT_REFERENCE:
        r.known(doc, field, {"type", "dockerReference"})
        ref = r.string(doc.get("dockerReference"), f"{field}.dockerReference")
        if not _DOCKER_SCOPE_RE.match(ref) or not _has_tag_or_digest(ref):
            raise r.fail(f"{field}.dockerReference", f"{ref!r} must be host/repo:tag or @digest")
        return SignedIdentity(kind, docker_reference=ref)
    if kind is IdentityType.EXACT_REPOSITORY:
        r.known(doc, field, {"type", "dockerRepository"})
        repo = r.string(doc.get("dockerRepository"), f"{field}.dockerRepository")
        if not _DOCKER_SCOPE_RE.match(repo) or _has_tag_or_digest(repo):
            raise r.fail(f"{field}.dockerRepository", f"{repo!r} must be a repository name")
        return SignedIdentity(kind, docker_repository=repo)
    if kind is IdentityType.REMAP_IDENTITY:
        r.known(doc, field, {"type", "prefix", "signedPrefix"})
        prefix = r.string(doc.get("prefix"), f"{field}.prefix")
        signed = r.string(doc.get("signedPrefix"), f"{field}.signedPrefix")
        for name, text in (("prefix", prefix), ("signedPrefix", signed)):
            if not _DOCKER_SCOPE_RE.match(text) or _has_tag_or_digest(text):
                raise r.fail(f"{field}.{name}", f"{text!r} must be a host, namespace or repository")
        return SignedIdentity(kind, prefix=prefix, signed_prefix=signed)
    r.known(doc, field, {"type"})
    return SignedIdentity(kind)


def _has_tag_or_digest(text: str) -> bool:
    # A colon in the last component of host/path is a tag; in a bare host, a port.
    return "@" in text or ("/" in text and ":" in text.rpartition("/")[2])


# --- writing (podman-sd trust show) ------------------------------------------


def requirement_to_json(req: Requirement) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": req.type_name}
    if isinstance(req, SigstoreSigned | SignedBy):
        if isinstance(req, SignedBy):
            doc["keyType"] = "GPGKeys"
        doc["keys"] = [k.describe() for k in req.keys]
        doc["signedIdentity"] = req.identity.to_json()
    return doc
