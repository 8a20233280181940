"""Throwaway GnuPG keys for the trust tests, made under pytest's tmp folder
(GNUPGHOME there, never the user's), their agents stopped afterwards."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class GpgKey:
    home: Path
    fingerprint: str
    armored: Path  # the exported public key
    binary: bytes

    def env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self.home), "LC_ALL": "C"}

    def gpg(self, *args: str, input: bytes | None = None) -> bytes:
        return subprocess.run(
            ["gpg", "--batch", "--no-tty", *args],
            env=self.env(),
            input=input,
            capture_output=True,
            check=True,
        ).stdout

    def sign(self, payload: bytes) -> bytes:
        """An attached OpenPGP signed message, as skopeo's --sign-by makes."""
        return self.gpg(
            "--pinentry-mode", "loopback", "--passphrase", "", "--local-user",
            self.fingerprint, "--sign", "--output", "-", input=payload,
        )  # fmt: skip


def make_key(home: Path, name: str) -> GpgKey:
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home), "LC_ALL": "C"}

    def gpg(*args: str) -> bytes:
        return subprocess.run(
            ["gpg", "--batch", "--no-tty", *args], env=env, capture_output=True, check=True
        ).stdout

    gpg(
        "--passphrase",
        "",
        "--quick-gen-key",
        f"{name} <{name}@example.com>",
        "ed25519",
        "sign",
        "never",
    )
    colons = gpg("--with-colons", "--list-keys").decode()
    fingerprint = next(
        line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")
    )
    armored = home / "public.asc"
    armored.write_bytes(gpg("--armor", "--export", fingerprint))
    return GpgKey(home, fingerprint, armored, gpg("--export", fingerprint))


def stop_agent(home: Path) -> None:
    # Where /run/user/UID exists, GnuPG keeps the sockets there: remove them too.
    for args in (["--kill", "gpg-agent"], ["--remove-socketdir"]):
        subprocess.run(
            ["gpgconf", *args],
            env={**os.environ, "GNUPGHOME": str(home)},
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="module")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GpgKey, GpgKey]]:
    """(trusted, stranger): two keys in two separate GnuPG homes."""
    base = tmp_path_factory.mktemp("gnupg")
    keys = (make_key(base / "trusted", "trusted"), make_key(base / "stranger", "stranger"))
    try:
        yield keys
    finally:
        for key in keys:
            stop_agent(key.home)
