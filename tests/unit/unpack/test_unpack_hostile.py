"""Hostile layers: each is refused (or handled safely), leaves nothing behind,
and touches nothing outside the layer's directory."""

from __future__ import annotations

import io
import os
import tarfile
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podman_sd.errors import LayerDigestError, LayerLimitError, UnpackError
from podman_sd.unpack import DEFAULT_LIMITS, UnpackLimits

from .tarbuild import (
    TAR,
    TAR_GZIP,
    TAR_ZSTD,
    E,
    dir_,
    file,
    gz,
    hardlink,
    make_tar,
    sha256,
    snapshot,
    symlink,
    unpack,
    zst,
)

MiB = 1 << 20
HOST_FILES = [Path("/etc/passwd"), Path("/etc/shadow"), Path("/etc/hostname")]


@dataclass
class Guard:
    store: Path
    outside: Path
    marker: str  # a name that must never appear at / or /tmp

    def reject(
        self,
        tar: bytes,
        match: str,
        *,
        entry: str | None = None,
        error: type[UnpackError] = UnpackError,
        media_type: str = TAR,
        blob: bytes | None = None,
        limits: UnpackLimits = DEFAULT_LIMITS,
        verify: bool = True,
    ) -> str:
        dest = self.store / "sha256-layer"
        with pytest.raises(error, match=match) as info:
            unpack(dest, tar, media_type=media_type, blob=blob, limits=limits, verify=verify)
        message = str(info.value)
        assert message.startswith("layer "), message
        assert "\n" not in message
        if entry is not None:
            assert f"entry {entry!r}" in message, message
        # Nothing at dest, no temporary directory left in the store.
        assert os.listdir(self.store) == []
        return message


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[Guard]:
    store = tmp_path / "store"
    store.mkdir()
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret").write_text("do not touch")
    (outside / "sub/file").write_text("nor this")
    marker = f"podman-sd-hostile-{uuid.uuid4().hex}"
    before = snapshot(outside)
    host_before = {p: (p.stat(), p.read_bytes()) for p in HOST_FILES if p.exists()}
    yield Guard(store, outside, marker)
    assert snapshot(outside) == before
    for path, (st, content) in host_before.items():
        now = path.stat()
        assert (now.st_ino, now.st_nlink, now.st_mtime_ns, now.st_ctime_ns) == (
            st.st_ino,
            st.st_nlink,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )
        assert path.read_bytes() == content
    for top in (Path("/"), Path("/tmp"), tmp_path):
        assert not any(marker in name for name in os.listdir(top))


# -- paths --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../x", "a/../../b", "a/../b", "./../x", "..", "/abs", "//abs/x"],
)
def test_path_traversal(guard: Guard, name: str) -> None:
    name = name.replace("x", guard.marker).replace("abs", guard.marker)
    tar = make_tar([file("ok", b"fine"), file(name, b"evil")])
    message = guard.reject(tar, "escapes the layer", entry=name)
    assert "'..' component" in message or "absolute path" in message


def test_absolute_path_to_tmp(guard: Guard) -> None:
    name = f"/tmp/{guard.marker}"
    guard.reject(make_tar([file(name, b"evil")]), "absolute path", entry=name)


@pytest.mark.parametrize("relative", [False, True])
def test_symlink_escape_then_write_through_it(guard: Guard, relative: bool) -> None:
    target = "../../outside" if relative else str(guard.outside)
    tar = make_tar(
        [
            symlink("link", target),
            file("link/secret", b"overwritten"),
            file(f"link/{guard.marker}", b"planted"),
        ]
    )
    guard.reject(tar, "symbolic link 'link'", entry="link/secret")


def test_symlink_to_a_host_directory(guard: Guard) -> None:
    tar = make_tar([symlink("etc", "/etc"), file("etc/passwd", b"root::0:0::/:/bin/sh\n")])
    guard.reject(tar, "symbolic link 'etc'", entry="etc/passwd")


def test_symlink_deeper_in_the_path(guard: Guard) -> None:
    tar = make_tar(
        [dir_("a/"), dir_("a/b/"), symlink("a/b/c", str(guard.outside)), file("a/b/c/d/e", b"x")]
    )
    guard.reject(tar, "symbolic link 'a/b/c'", entry="a/b/c/d/e")


def test_directory_replaced_by_a_symlink_then_written_below(guard: Guard) -> None:
    tar = make_tar(
        [
            dir_("d/"),
            file("d/f", b"inside"),
            symlink("d", str(guard.outside)),  # the later entry wins: d is a link now
            file("d/secret", b"overwritten"),
        ]
    )
    guard.reject(tar, "symbolic link 'd'", entry="d/secret")


def test_symlink_loop(guard: Guard) -> None:
    tar = make_tar([symlink("l", "."), file("l/l/x", b"x")])
    guard.reject(tar, "symbolic link 'l'", entry="l/l/x")


def test_symlink_replaced_by_a_file_does_not_write_through(guard: Guard) -> None:
    dest = guard.store / "layer"
    tar = make_tar([symlink("s", str(guard.outside / "secret")), file("s", b"mine")])
    unpack(dest, tar)
    assert (dest / "s").read_bytes() == b"mine"
    assert (guard.outside / "secret").read_text() == "do not touch"


def test_path_too_long(guard: Guard) -> None:
    name = "a/" * 2100 + "f"
    guard.reject(make_tar([file(name)]), "longer than 4096 bytes", error=LayerLimitError)
    guard.reject(make_tar([file("x" * 256)]), "component longer than 255")


def test_nul_in_name(guard: Guard) -> None:
    tar = make_tar([file("a", pax={"path": "a\0/../../b"})])
    guard.reject(tar, "NUL byte")


# -- hard links -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("linkname", "match"),
    [
        ("/etc/passwd", "absolute path"),
        ("../../../../../../etc/passwd", "'..' component"),
        ("etc/passwd", "not an earlier entry of this layer"),
        ("later", "not an earlier entry of this layer"),
        ("h", "hard link to itself"),
        ("dir", "not an earlier entry of this layer"),
    ],
)
def test_hard_link_targets(guard: Guard, linkname: str, match: str) -> None:
    tar = make_tar([dir_("dir/"), hardlink("h", linkname), file("later", b"x")])
    guard.reject(tar, match, entry="h")


def test_hard_link_through_a_symlink(guard: Guard) -> None:
    tar = make_tar(
        [
            dir_("d/"),
            file("d/secret", b"inside"),
            symlink("d", str(guard.outside)),
            hardlink("h", "d/secret"),
        ]
    )
    guard.reject(tar, "symbolic link 'd'", entry="h")


def test_hard_link_to_a_symlink_links_the_symlink(guard: Guard) -> None:
    dest = guard.store / "layer"
    unpack(dest, make_tar([symlink("s", str(guard.outside / "secret")), hardlink("h", "s")]))
    assert os.readlink(dest / "h") == str(guard.outside / "secret")
    assert (dest / "h").lstat().st_ino == (dest / "s").lstat().st_ino


# -- entry types and metadata ---------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        E("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        E("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
    ],
    ids=["char", "block"],
)
def test_device_nodes_not_allowed_by_default(guard: Guard, entry: E) -> None:
    guard.reject(make_tar([entry]), "device nodes are not allowed", entry=entry.name)


def test_char_0_0_is_never_a_device(guard: Guard) -> None:
    tar = make_tar([E("etc/passwd", tarfile.CHRTYPE, devmajor=0, devminor=0)])
    guard.reject(tar, "overlayfs whiteout", limits=UnpackLimits(allow_devices=True))


def test_overlay_xattrs_are_refused(guard: Guard) -> None:
    for name in ("trusted.overlay.opaque", "trusted.overlay.redirect", "user.overlay.origin"):
        tar = make_tar([dir_("d/", pax={f"SCHILY.xattr.{name}": "y"})])
        guard.reject(tar, "reserved for overlayfs", entry="d")


def test_root_must_be_a_directory(guard: Guard) -> None:
    guard.reject(make_tar([file("./", b"x")]), "root of a layer must be a directory")
    guard.reject(make_tar([symlink(".", "/")]), "root of a layer must be a directory")


@pytest.mark.parametrize("name", [".wh..", ".wh.", "a/.wh.."])
def test_invalid_whiteouts(guard: Guard, name: str) -> None:
    guard.reject(make_tar([file(name)]), "invalid whiteout", entry=name)


def test_ids_out_of_range(guard: Guard) -> None:
    guard.reject(make_tar([file("f", uid=2**32 - 1)]), "uid 4294967295 is out of range")
    guard.reject(make_tar([file("f", gid=2**40)]), "out of range")


def test_unsupported_entry_types(guard: Guard) -> None:
    guard.reject(make_tar([E("weird", b"Z")]), "unsupported entry type", entry="weird")
    raw = bytearray(make_tar([file("sparse", b"x")], end_marker=True))
    # Retype the (ustar) member header as GNU sparse: refused before parsing.
    header = _member_header_offset(bytes(raw), "sparse")
    raw[header + 156 : header + 157] = tarfile.GNUTYPE_SPARSE
    _fix_checksum(raw, header)
    guard.reject(bytes(raw), "sparse files are not supported")


# -- limits -----------------------------------------------------------------------


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info.tobuf(tarfile.USTAR_FORMAT)


def test_gzip_bomb_stops_at_the_limit_quickly(guard: Guard) -> None:
    # A 1 GiB file of zeros: a header, then one ~1 KiB gzip member per MiB.
    piece = gz(bytes(MiB))
    assert len(piece) < 8192
    blob = gz(_header("bomb", 1 << 30)) + piece * 1024
    start = time.monotonic()
    guard.reject(
        b"",
        "expands to more than 33554432 bytes",
        entry="bomb",
        error=LayerLimitError,
        media_type=TAR_GZIP,
        blob=blob,
        verify=False,
        limits=UnpackLimits(max_expanded_bytes=32 * MiB),
    )
    assert time.monotonic() - start < 5
    # The defaults are bounded too.
    assert DEFAULT_LIMITS.max_expanded_bytes < 1 << 40


def test_single_member_gzip_bomb(guard: Guard) -> None:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    blob = compressor.compress(_header("bomb", 64 * MiB))
    for _ in range(64):
        blob += compressor.compress(bytes(MiB))
    blob += compressor.flush()
    guard.reject(
        b"",
        "expands to more than",
        error=LayerLimitError,
        media_type=TAR_GZIP,
        blob=blob,
        verify=False,
        limits=UnpackLimits(max_expanded_bytes=8 * MiB),
    )


def test_compression_ratio_limit(guard: Guard) -> None:
    # zstd turns zero runs into 32768:1; the default ratio limit stops it
    # once past the floor, long before the size limit.
    frame = zst(bytes(16 * MiB))
    blob = zst(_header("bomb", 1 << 30)) + frame * 64
    guard.reject(
        b"",
        "more than 2000 times its compressed size",
        entry="bomb",
        error=LayerLimitError,
        media_type=TAR_ZSTD,
        blob=blob,
        verify=False,
        limits=UnpackLimits(ratio_floor_bytes=4 * MiB),
    )
    # gzip stays below its ~1032:1 maximum; a tighter limit stops it as well.
    guard.reject(
        b"",
        "more than 100 times",
        error=LayerLimitError,
        media_type=TAR_GZIP,
        blob=gz(_header("bomb", 64 * MiB) + bytes(64 * MiB)),
        verify=False,
        limits=UnpackLimits(max_ratio=100, ratio_floor_bytes=MiB),
    )


def test_zeros_after_the_end_marker_are_bounded(guard: Guard) -> None:
    blob = gz(bytes(16 * MiB))
    guard.reject(
        b"",
        "expands to more than",
        error=LayerLimitError,
        media_type=TAR_GZIP,
        blob=blob,
        verify=False,
        limits=UnpackLimits(max_expanded_bytes=4 * MiB),
    )


def test_too_many_entries(guard: Guard) -> None:
    tar = make_tar(file(f"f{i}") for i in range(5000))
    start = time.monotonic()
    guard.reject(
        tar,
        "more than 1000 entries",
        entry="f1000",
        error=LayerLimitError,
        limits=UnpackLimits(max_entries=1000),
    )
    assert time.monotonic() - start < 5
    # A million tiny entries would stop at the default limit.
    assert DEFAULT_LIMITS.max_entries < 1_000_000


def test_implicit_directories_count_as_entries(guard: Guard) -> None:
    tar = make_tar([file("/".join(["d"] * 100) + "/f")])
    guard.reject(
        tar, "more than 50 entries", error=LayerLimitError, limits=UnpackLimits(max_entries=50)
    )


def test_header_limits(guard: Guard) -> None:
    big = "v" * (2 * MiB)
    guard.reject(
        make_tar([file("f", pax={"comment": big})]), "tar header larger than", error=LayerLimitError
    )
    guard.reject(
        make_tar([file("f", pax={"SCHILY.xattr.user.big": "v" * (65 * 1024)})]),
        "extended attribute 'user.big' larger than 65536 bytes",
        error=LayerLimitError,
        entry="f",
    )
    guard.reject(
        make_tar([symlink("s", "t" * 5000)]), "symbolic link target longer", error=LayerLimitError
    )


def test_chained_extended_headers(guard: Guard) -> None:
    record = b"19 comment=chained\n"
    chain = b""
    for _ in range(3000):
        info = tarfile.TarInfo("pax")
        info.type = tarfile.XHDTYPE
        info.size = len(record)
        chain += info.tobuf(tarfile.USTAR_FORMAT) + record + bytes(512 - len(record))
    tar = chain + make_tar([file("f", b"x")])
    guard.reject(tar, "header|nested")


# -- truncation and corruption ------------------------------------------------------------


def test_truncated_archives(guard: Guard) -> None:
    tar = make_tar([file("a", b"a" * 5000), file("b", b"b" * 5000)])
    mid_data = tar[: 512 * 3]
    guard.reject(mid_data, "truncated", verify=False)
    at_boundary = make_tar([file("a", b"a" * 5000)], end_marker=False)
    guard.reject(at_boundary, "no end-of-archive marker", verify=False)
    guard.reject(tar[:700], "truncated", verify=False)  # inside a header
    guard.reject(b"", "truncated|empty", verify=False)
    guard.reject(
        b"", "gzip stream ends early", media_type=TAR_GZIP, blob=gz(tar)[:-100], verify=False
    )
    guard.reject(
        b"", "zstd stream ends early", media_type=TAR_ZSTD, blob=zst(tar)[:-50], verify=False
    )


def test_corrupt_archives(guard: Guard) -> None:
    tar = bytearray(make_tar([file("a", b"a" * 600), file("b", b"b")]))
    header = _member_header_offset(bytes(tar), "b")
    tar[header + 148] ^= 0x7F  # bad checksum on the second header
    guard.reject(bytes(tar), "corrupt archive", verify=False)
    good = make_tar([file("a", b"a")])
    guard.reject(
        b"", "corrupt gzip", media_type=TAR_GZIP, blob=gz(good) + b"trailing junk", verify=False
    )
    guard.reject(
        b"", "corrupt zstd", media_type=TAR_ZSTD, blob=zst(good) + b"trailing junk", verify=False
    )
    guard.reject(
        b"", "zstd", media_type=TAR_ZSTD, blob=b"\x28\xb5\x2f\xfd" + bytes(64), verify=False
    )
    guard.reject(b"", "corrupt gzip", media_type=TAR_GZIP, blob=good, verify=False)


def test_wrong_digests(guard: Guard) -> None:
    tar = make_tar([file("a", b"a")])
    blob = gz(tar)
    for digest, diff_id in [(sha256(b"x"), sha256(tar)), (sha256(blob), sha256(b"x"))]:
        dest = guard.store / "layer"
        with pytest.raises(LayerDigestError, match="mismatch"):
            from podman_sd.unpack import unpack_layer

            unpack_layer(
                io.BytesIO(blob),
                TAR_GZIP,
                dest,
                expected_digest=digest,
                expected_diff_id=diff_id,
                durable=False,
            )
        assert os.listdir(guard.store) == []


def test_a_deep_tree_is_removed_after_a_failure(guard: Guard) -> None:
    deep = "/".join(["d"] * 1500)
    guard.reject(make_tar([file(f"{deep}/f"), file("../escape")]), "escapes", entry="../escape")


def test_a_failure_after_writing_much_leaves_nothing(guard: Guard) -> None:
    entries = [file(f"dir{i // 50}/f{i}", b"data" * 100, mode=0o4755) for i in range(500)]
    entries.insert(0, dir_("ro/", mode=0o555))
    entries.append(file("ro/inner", b"x", mode=0o000))
    entries.append(file("../escape"))
    guard.reject(make_tar(entries), "escapes the layer", entry="../escape")


# -- helpers ------------------------------------------------------------------------


def _member_header_offset(tar: bytes, name: str) -> int:
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        return t.getmember(name).offset


def _fix_checksum(raw: bytearray, offset: int) -> None:
    raw[offset + 148 : offset + 156] = b" " * 8
    checksum = sum(raw[offset : offset + 512])
    raw[offset + 148 : offset + 156] = b"%06o\0 " % checksum
