"""GPG simple signing, verified by GnuPG's ``gpgv``.

As systemd-importd does, every check runs in a throwaway home directory whose
keyring holds exactly the policy's keys, so the host's own GnuPG state (its
keys, trust database, agent) never takes part: gpgv trusts every key in the
keyring it is given and nothing else. The signed payload and the signer come
from gpgv itself (``--output`` and ``--status-fd``), never from parsing the
untrusted OpenPGP message ourselves.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from podman_sd.errors import CommandError, PolicyError
from podman_sd.run import run
from podman_sd.trust.payload import PayloadError

GPGV = "gpgv"
TIMEOUT = 60.0
MAX_PAYLOAD_SIZE = 4 * 1024 * 1024

_ARMOR_RE = re.compile(
    rb"-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(.*?)-----END PGP PUBLIC KEY BLOCK-----", re.S
)
# Status lines that must not appear for a signature we accept (doc/DETAILS of GnuPG).
_BAD_STATUS = frozenset(
    {"BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY", "FAILURE"}
)


@dataclass(frozen=True)
class GpgResult:
    payload: bytes
    # The primary key's fingerprint (the one a policy's keyring names), and
    # the (sub)key that made the signature.
    fingerprint: str
    signing_key: str


def dearmor(data: bytes, source: str) -> bytes:
    """Binary OpenPGP key material from an armored or binary key file."""
    if b"-----BEGIN PGP" not in data:
        if not data or not data[0] & 0x80:
            raise PolicyError(f"{source}: not an OpenPGP public key or keyring")
        return data
    blocks = _ARMOR_RE.findall(data)
    if not blocks:
        raise PolicyError(f"{source}: no PGP PUBLIC KEY BLOCK in the armored key")
    out = bytearray()
    for block in blocks:
        lines = block.decode("ascii", errors="replace").splitlines()
        # Armor headers ("Version: …") end with an empty line.
        if lines and (":" in lines[0] or not lines[0].strip()):
            blank = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
            lines = lines[blank + 1 :]
        body = "".join(
            line.strip() for line in lines if not (line.startswith("=") and len(line.strip()) == 5)
        )
        try:
            out += base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise PolicyError(f"{source}: the armored key is not valid base64") from None
    return bytes(out)


class GpgVerifier:
    """A throwaway GnuPG home with a keyring of only the trusted keys."""

    def __init__(self, home: Path, gpgv: str = GPGV) -> None:
        self.home = home
        self.keyring = home / "trusted.gpg"
        self.gpgv = gpgv
        self._count = 0

    def verify(self, signature: bytes) -> GpgResult:
        """The payload and signer of SIGNATURE; PayloadError with a reason if it is not good."""
        if not signature or not signature[0] & 0x80:
            # Not an OpenPGP packet (a sigstore signature starts with NUL).
            raise PayloadError("not an OpenPGP signed message")
        self._count += 1
        sig_path = self.home / f"signature-{self._count}"
        out_path = self.home / f"payload-{self._count}"
        sig_path.write_bytes(signature)
        # First without --output: gpgv writes the literal data out as it reads
        # it, before the signature is checked, so an untrusted compressed
        # message could fill the disk. Only a good signature gets the second run.
        _judge(self._gpgv(sig_path, None), None)
        status = self._gpgv(sig_path, out_path)
        with open(out_path, "rb") as f:
            payload = f.read(MAX_PAYLOAD_SIZE + 1)
        if len(payload) > MAX_PAYLOAD_SIZE:
            raise PayloadError(f"the signed payload is larger than {MAX_PAYLOAD_SIZE} bytes")
        return _judge(status, payload)

    def _gpgv(self, sig_path: Path, out_path: Path | None) -> list[list[str]]:
        argv = [self.gpgv, "--homedir", str(self.home), "--keyring", str(self.keyring)]
        argv += ["--status-fd", "1"]
        if out_path is not None:
            argv += ["--output", str(out_path)]
        argv.append(str(sig_path))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        env["GNUPGHOME"] = str(self.home)
        try:
            result = run(argv, env=env, timeout=TIMEOUT)
        except CommandError as err:
            # gpgv's own last words ("Can't check signature: No public key",
            # "BAD signature from …") without our temporary paths.
            why = str(err).rpartition(" failed: ")[2] or str(err)
            raise PayloadError(why) from None
        return _parse_status(result.stdout)


def _parse_status(stdout: bytes) -> list[list[str]]:
    lines = []
    for line in stdout.decode("utf-8", errors="replace").splitlines():
        if line.startswith("[GNUPG:] "):
            lines.append(line[len("[GNUPG:] ") :].split())
    return lines


def _judge(status: Sequence[list[str]], payload: bytes | None) -> GpgResult:
    """The result if STATUS reports one good signature (over PAYLOAD, if one was written)."""
    keywords = [fields[0] for fields in status if fields]
    bad = sorted(_BAD_STATUS.intersection(keywords))
    if bad:
        raise PayloadError(f"gpgv reported {', '.join(bad)}")
    # containers/image accepts exactly one signature per message.
    if keywords.count("NEWSIG") != 1 or keywords.count("GOODSIG") != 1:
        raise PayloadError("not exactly one good signature in the message")
    validsig = [fields for fields in status if fields[0] == "VALIDSIG"]
    written = payload is None or keywords.count("PLAINTEXT") == 1
    if len(validsig) != 1 or len(validsig[0]) < 11 or not written:
        raise PayloadError("gpgv did not report one valid signature over one payload")
    fields = validsig[0]
    return GpgResult(payload=payload or b"", fingerprint=fields[10], signing_key=fields[1])


@contextlib.contextmanager
def gpg_verifier(
    keys: Sequence[tuple[str, bytes]], scratch_dir: Path | None = None, gpgv: str = GPGV
) -> Iterator[GpgVerifier]:
    """A verifier trusting exactly KEYS ((source, key file bytes) pairs)."""
    keyring = b"".join(dearmor(data, source) for source, data in keys)
    # TemporaryDirectory is created mode 0700 and removed with everything in it.
    with tempfile.TemporaryDirectory(prefix="podman-sd-gpg-", dir=scratch_dir) as home:
        verifier = GpgVerifier(Path(home), gpgv)
        verifier.keyring.write_bytes(keyring)
        yield verifier
