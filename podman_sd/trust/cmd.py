"""``podman-sd trust show|set``: read and edit the trust policy (the shape of
``podman image trust``).

    podman-sd trust show [--json]
    podman-sd trust set --type sigstoreSigned|signedBy --pubkeyfile KEY... SCOPE
    podman-sd trust set --type reject|accept SCOPE

SCOPE is ``default``, a docker scope (``registry[/namespace[/repo[:tag]]]``,
``*.domain``), or ``oci:/path`` / ``oci-archive:/path``. The policy is
validated before and after the edit and replaced atomically, so a reader
never sees half a policy and an edit never leaves one we cannot enforce.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from podman_sd.errors import PolicyError
from podman_sd.image.reference import Transport
from podman_sd.image.store import atomic_write
from podman_sd.trust.gpg import dearmor
from podman_sd.trust.policy import (
    MAX_POLICY_SIZE,
    load_policy,
    loads_json,
    parse_policy,
    policy_path,
    requirement_to_json,
)
from podman_sd.trust.sigstore import load_public_key

# --type values, as podman image trust spells them, and the requirement each writes.
TRUST_TYPES = {
    "accept": "insecureAcceptAnything",
    "reject": "reject",
    "sigstoreSigned": "sigstoreSigned",
    "signedBy": "signedBy",
}
DEFAULT_POLICY: dict[str, Any] = {"default": [{"type": "reject"}], "transports": {}}


def run_trust_show(as_json: bool, out: TextIO, policy_file: Path | None = None) -> int:
    policy = load_policy(policy_file)
    rows = []
    for scope in policy.all_scopes():
        for req in scope.requirements:
            doc = requirement_to_json(req)
            rows.append({"transport": scope.transport, "scope": scope.scope, **doc})
    if as_json:
        json.dump({"policy": policy.path, "requirements": rows}, out, indent=1)
        out.write("\n")
        return 0
    out.write(f"{'TRANSPORT':<12} {'SCOPE':<40} {'TYPE':<24} KEYS\n")
    for row in rows:
        transport = row["transport"] or "all"
        name = row["scope"] or "default"
        keys = ", ".join(row.get("keys", [])) or "-"
        out.write(f"{transport:<12} {name:<40} {row['type']:<24} {keys}\n")
    return 0


def run_trust_set(
    type: str, pubkeyfiles: Sequence[str], scope: str, policy_file: Path | None = None
) -> int:
    path = policy_file or policy_path()
    if type not in TRUST_TYPES:
        raise PolicyError(f"--type {type!r}: must be one of {', '.join(TRUST_TYPES)}")
    requirement = _requirement(TRUST_TYPES[type], pubkeyfiles)
    doc = _read_raw(path)
    transport, name = _split_scope(scope)
    if transport is None:
        doc["default"] = [requirement]
    else:
        transports = doc.setdefault("transports", {})
        transports.setdefault(transport, {})[name] = [requirement]
    # Validate exactly what is written (scope syntax, keys, everything).
    parse_policy(json.loads(json.dumps(doc)), f"{path} (after the edit)")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(doc, indent=4) + "\n").encode(), 0o644)
    return 0


def _requirement(kind: str, pubkeyfiles: Sequence[str]) -> dict[str, Any]:
    if kind in ("reject", "insecureAcceptAnything"):
        if pubkeyfiles:
            raise PolicyError(f"--pubkeyfile makes no sense with a {kind} requirement")
        return {"type": kind}
    if not pubkeyfiles:
        raise PolicyError(f"a {kind} requirement needs at least one --pubkeyfile")
    keys = []
    for name in pubkeyfiles:
        key = Path(name).absolute()
        try:
            data = key.read_bytes()
        except OSError as err:
            raise PolicyError(f"--pubkeyfile {name}: {err.strerror}") from None
        # Refuse now a key that verification could not use later.
        if kind == "sigstoreSigned":
            load_public_key(data, str(key))
        else:
            dearmor(data, str(key))
        keys.append(str(key))
    doc: dict[str, Any] = {"type": kind}
    if kind == "signedBy":
        doc["keyType"] = "GPGKeys"
    if len(keys) == 1:
        doc["keyPath"] = keys[0]
    else:
        doc["keyPaths"] = keys
    return doc


def _split_scope(scope: str) -> tuple[str | None, str]:
    if scope == "default":
        return None, ""
    for transport in (Transport.OCI, Transport.OCI_ARCHIVE):
        prefix = f"{transport.value}:"
        if scope.startswith(prefix):
            return transport.value, scope[len(prefix) :]
    return Transport.DOCKER.value, scope.removeprefix("docker://")


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return json.loads(json.dumps(DEFAULT_POLICY))  # type: ignore[no-any-return]
    except OSError as err:
        raise PolicyError(f"cannot read the trust policy {path}: {err.strerror}") from None
    if len(data) > MAX_POLICY_SIZE:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_SIZE} bytes")
    doc = loads_json(data, str(path))
    # Refuse to edit a policy we cannot read: the edit would hide the problem.
    parse_policy(doc, str(path))
    assert isinstance(doc, dict)
    return doc
