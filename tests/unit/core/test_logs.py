"""Log relay: one journal entry per line, long lines split and marked."""

from __future__ import annotations

import os
import struct

from podman_sd.runtime.logs import LINE_MAX, LogRelay
from podman_sd.systemd.journal import encode_field, encode_fields


class FakeWriter:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    def send(self, message: bytes, fields: bytes) -> None:
        self.sent.append((message, fields))

    def send_line(self, fields: bytes, line: bytes) -> None:
        self.sent.append((line, fields))


def relay_all(data: bytes) -> list[tuple[bytes, bytes]]:
    read_fd, write_fd = os.pipe()
    writer = FakeWriter()
    relay = LogRelay(writer, read_fd, {"CONTAINER_NAME": "web", "PRIORITY": 6})  # type: ignore[arg-type]
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
        os._exit(0)
    os.close(write_fd)
    while relay.read():
        pass
    os.waitpid(pid, 0)
    os.close(read_fd)
    return writer.sent


def test_one_entry_per_line_with_fields() -> None:
    sent = relay_all(b"one\ntwo\n\nthree-without-newline")
    assert [m for m, _ in sent] == [b"one", b"two", b"", b"three-without-newline"]
    assert all(f == b"CONTAINER_NAME=web\nPRIORITY=6\n" for _, f in sent)


def test_long_lines_are_split_and_marked_partial() -> None:
    sent = relay_all(b"x" * (LINE_MAX * 2 + 10) + b"\nshort\n")
    assert [len(m) for m, _ in sent] == [LINE_MAX, LINE_MAX, 10, 5]
    partial = [b"CONTAINER_PARTIAL_MESSAGE=true" in f for _, f in sent]
    assert partial == [True, True, False, False]


def test_many_lines_none_lost() -> None:
    lines = [f"line {i}".encode() for i in range(20000)]
    sent = relay_all(b"\n".join(lines) + b"\n")
    assert [m for m, _ in sent] == lines


def test_binary_safe_field_encoding() -> None:
    assert encode_field("A", b"x") == b"A=x\n"
    assert encode_field("A", b"x\ny") == b"A\n" + struct.pack("<Q", 3) + b"x\ny\n"
    assert encode_fields({"K": 1}) == b"K=1\n"


def test_the_tail_for_fallback_to_logs_is_at_most_80_lines_and_2048_bytes() -> None:
    from podman_sd.runtime.logs import TAIL_BYTES, relays_for, tail_message

    class Sink:
        def send_line(self, fields: bytes, line: bytes) -> None:
            pass

        def send(self, message: bytes, fields: bytes) -> None:
            pass

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    relays = relays_for(Sink(), [(out_r, {}), (err_r, {})], keep_tail=True)  # type: ignore[arg-type]
    os.write(out_w, "".join(f"{i}\n" for i in range(1, 101)).encode())
    relays[0].read()
    os.write(err_w, b"x" * 10 + b"\nlast words\n")
    relays[1].read()
    tail = relays[0].tail
    assert tail is relays[1].tail and tail is not None  # one tail for both streams
    assert tail_message(tail).split("\n")[-3:] == ["100", "x" * 10, "last words"]
    assert len(tail_message(tail).split("\n")) == 80
    os.write(out_w, b"y" * 5000 + b"\nend\n")
    relays[0].read()
    assert len(tail) == TAIL_BYTES and tail_message(tail).endswith("\nend")
    for fd in (out_r, out_w, err_r, err_w):
        os.close(fd)
    assert relays_for(Sink(), [(0, {})], keep_tail=False)[0].tail is None  # type: ignore[arg-type]
