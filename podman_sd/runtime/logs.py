"""Relaying an app's stdout and stderr to the journal, one entry per line.

Fields are those docker's and podman's journald log drivers write, so that
existing tooling (``journalctl CONTAINER_NAME=web``) works. A line longer
than the journal's line limit is split, every piece but the last marked
``CONTAINER_PARTIAL_MESSAGE=true``, as the docker driver does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from podman_sd.systemd.journal import JournalWriter, encode_field, encode_fields

# journald's default LineMax: longer stream lines are split by journald too.
LINE_MAX = 48 * 1024
READ_SIZE = 256 * 1024
# At most this many reads when an app exits (more than a full pipe: 64 KiB
# by default, 1 MiB at most); the select loop relays anything after that.
DRAIN_READS = 8

_PARTIAL = encode_field("CONTAINER_PARTIAL_MESSAGE", b"true")

# terminationMessagePolicy: FallbackToLogsOnError takes the end of an app's
# output: Kubernetes keeps at most 2048 bytes or 80 lines of it.
TAIL_BYTES = 2048
TAIL_LINES = 80


class LogRelay:
    """Reads one pipe and sends complete lines to the journal."""

    def __init__(
        self,
        writer: JournalWriter,
        fd: int,
        fields: Mapping[str, str | int],
        tail: bytearray | None = None,  # keeps the end of the output, if given
    ) -> None:
        self.writer = writer
        self.fd = fd
        self.fields = encode_fields(fields)
        self._pending = b""
        self.tail = tail

    def read(self) -> bool:
        """Relay what is readable now; False at end of file."""
        data = os.read(self.fd, READ_SIZE)
        if not data:
            self.flush()
            return False
        if self.tail is not None:
            self.tail += data[-TAIL_BYTES:]
            del self.tail[:-TAIL_BYTES]
        if self._pending:
            data = self._pending + data
        lines = data.split(b"\n")
        self._pending = lines.pop()
        send_line, fields = self.writer.send_line, self.fields
        for line in lines:
            if len(line) > LINE_MAX:
                self._send(line)
            else:
                send_line(fields, line)
        while len(self._pending) > LINE_MAX:
            self.writer.send(self._pending[:LINE_MAX], self.fields + _PARTIAL)
            self._pending = self._pending[LINE_MAX:]
        return True

    def drain(self, max_reads: int = DRAIN_READS) -> bool:
        """Relay what is left in the pipe once the app has exited, without
        waiting: a child of the app may still hold the pipe open (and keep
        writing, hence the bound). False at end of file."""
        os.set_blocking(self.fd, False)  # the app is gone: nothing to wait for
        for _ in range(max_reads):
            try:
                if not self.read():
                    return False
            except BlockingIOError:
                break
        return True

    def _send(self, line: bytes) -> None:
        while len(line) > LINE_MAX:
            self.writer.send(line[:LINE_MAX], self.fields + _PARTIAL)
            line = line[LINE_MAX:]
        self.writer.send(line, self.fields)

    def flush(self) -> None:
        if self._pending:
            self._send(self._pending)
            self._pending = b""


def relays_for(
    writer: JournalWriter, streams: list[tuple[int, Mapping[str, str | int]]], keep_tail: bool
) -> list[LogRelay]:
    """The relays of one app's streams; with KEEP_TAIL they share one tail
    (the end of its stdout and stderr together, as they came)."""
    tail = bytearray() if keep_tail else None
    return [LogRelay(writer, fd, fields, tail) for fd, fields in streams]


def tail_message(tail: bytes | bytearray) -> str:
    """The last lines of TAIL, as Kubernetes' FallbackToLogsOnError takes them."""
    lines = tail[-TAIL_BYTES:].decode(errors="replace").strip().split("\n")
    return "\n".join(lines[-TAIL_LINES:])
