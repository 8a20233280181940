"""Writing structured entries to journald over its native protocol.

One datagram per entry to /run/systemd/journal/socket (systemd.journal-fields
and the "Native Journal Protocol" document). Entries sent from the launcher
are attributed by journald to the launcher's unit, ``pod@NAME.service``, so
``journalctl -u pod@NAME`` shows every app's output.

The socket is blocking on purpose: when journald falls behind, the launcher
waits instead of dropping lines, and the app waits on its pipe in turn.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping

JOURNAL_SOCKET = "/run/systemd/journal/socket"

PRIORITY_ERR = 3
PRIORITY_INFO = 6


def encode_field(key: str, value: bytes) -> bytes:
    if b"\n" in value:
        # Binary-safe form: KEY\n, 64-bit little-endian length, data, \n.
        return key.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return key.encode() + b"=" + value + b"\n"


class JournalWriter:
    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # Room for large entries; journald accepts datagrams up to its buffer.
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 1024 * 1024)
        self._socket.connect(path)

    def send(self, message: bytes, fields: bytes) -> None:
        """Send MESSAGE with FIELDS, already encoded by ``encode_fields``."""
        self._socket.send(fields + encode_field("MESSAGE", message))

    def send_line(self, fields: bytes, line: bytes) -> None:
        """The hot path: LINE has no newline, so it goes as MESSAGE=LINE,
        gathered by sendmsg(2) without copying it into a new buffer."""
        self._socket.sendmsg((fields, b"MESSAGE=", line, b"\n"))

    def close(self) -> None:
        self._socket.close()


def encode_fields(fields: Mapping[str, str | int]) -> bytes:
    """Encode fields once, to reuse them for every line of one stream."""
    return b"".join(encode_field(key, str(value).encode()) for key, value in fields.items())
