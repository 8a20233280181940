"""Registry credentials in the containers-auth.json(5) format.

    {"auths": {"registry.example:5000": {"auth": "base64(user:password)"},
               "registry.example:5000/team/app": {"auth": "..."}}}

The most specific key wins (``host/namespace/repo`` before ``host``). The
file is ``$REGISTRY_AUTH_FILE`` or ``/etc/podman-sd/auth.json``. It is root's
(mode 0600) and the sandboxed helper is not: the root caller reads it and
hands its content to the helper on stdin (``podman-sd-fetch pull
--auth-stdin``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from podman_sd import paths
from podman_sd.errors import ImageError

MAX_AUTH_FILE = 1024 * 1024


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never put a password into a traceback
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def default_auth_file() -> Path:
    """The auth file a root caller should hand to the helper."""
    env = os.environ.get("REGISTRY_AUTH_FILE")
    return Path(env) if env else paths.config_dir() / "auth.json"


def _normalise_key(key: str) -> str:
    key = key.removeprefix("https://").removeprefix("http://").rstrip("/")
    # Docker's legacy key for Docker Hub.
    if key in ("index.docker.io/v1", "index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    return key


@dataclass(frozen=True)
class AuthFile:
    entries: dict[str, Credentials]
    source: str

    def lookup(self, registry: str, repository: str) -> Credentials | None:
        """Credentials for REGISTRY/REPOSITORY, most specific key first."""
        parts = repository.split("/")
        for n in range(len(parts), -1, -1):
            key = "/".join([registry, *parts[:n]])
            if key in self.entries:
                return self.entries[key]
        return None


def parse_auth_file(data: bytes, source: str) -> AuthFile:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise ImageError(f"{source}: not valid JSON ({err})") from None
    auths = doc.get("auths", {}) if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        raise ImageError(f'{source}: expected an object with an "auths" object')
    entries: dict[str, Credentials] = {}
    for key, value in auths.items():
        if not isinstance(value, dict):
            raise ImageError(f"{source}: auths[{key!r}]: expected an object")
        encoded = value.get("auth")
        if not encoded:
            continue  # identitytoken-only entries (OAuth refresh) are not supported
        try:
            username, sep, password = (
                base64.b64decode(encoded, validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError, TypeError):
            sep = ""
        if not sep:
            raise ImageError(f"{source}: auths[{key!r}].auth: expected base64 of USER:PASSWORD")
        entries[_normalise_key(key)] = Credentials(username, password)
    return AuthFile(entries, source)


def load_auth_file(path: Path | None = None) -> AuthFile:
    path = path or default_auth_file()
    try:
        with path.open("rb") as file:
            data = file.read(MAX_AUTH_FILE + 1)
    except FileNotFoundError:
        return AuthFile({}, str(path))
    except OSError as err:
        raise ImageError(f"cannot read credentials from {path}: {err.strerror}") from None
    if len(data) > MAX_AUTH_FILE:
        raise ImageError(f"{path}: larger than {MAX_AUTH_FILE} bytes")
    return parse_auth_file(data, str(path))


def read_auth_stream(stream: BinaryIO) -> AuthFile:
    """Credentials handed over on STREAM (empty: none)."""
    data = stream.read(MAX_AUTH_FILE + 1)
    if len(data) > MAX_AUTH_FILE:
        raise ImageError(f"credentials on stdin: larger than {MAX_AUTH_FILE} bytes")
    source = str(default_auth_file())
    return parse_auth_file(data, source) if data.strip() else AuthFile({}, source)
