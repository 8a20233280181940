"""unpack_layer on honest layers: every entry type, metadata, whiteouts, streams."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from podman_sd.errors import LayerDigestError, UnpackError
from podman_sd.unpack import MEDIA_TYPES, UnpackLimits, unpack_layer

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
    symlink,
    unpack,
    xattrs,
    zst,
)

# security.capability for cap_net_bind_service=ep (struct vfs_cap_data, revision 2).
CAP_NET_BIND_SERVICE = bytes.fromhex("0100000200040000000000000000000000000000")


def is_whiteout(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    return xattrs(path).get("trusted.overlay.opaque") == b"y"


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".tmp-"))


@pytest.mark.parametrize("media_type", [TAR, TAR_GZIP, TAR_ZSTD])
def test_every_entry_type_and_its_metadata(tmp_path: Path, media_type: str) -> None:
    tar = make_tar(
        [
            dir_("./", mode=0o755, mtime=1_000),
            dir_("bin/", mode=0o711, uid=2, gid=3, mtime=2_000),
            file("bin/tool", b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0, mtime=3_000),
            file("bin/group-tool", b"x", mode=0o2711, uid=1000, gid=50),
            dir_("tmp/", mode=0o1777),
            file("etc/data", b"payload" * 1000, mode=0o600, uid=1000, gid=1000),
            hardlink("etc/data-link", "etc/data"),
            symlink("etc/rel", "../bin/tool"),
            symlink("etc/abs", "/does/not/exist"),
            E("run/fifo", tarfile.FIFOTYPE, mode=0o620, uid=5, gid=6, mtime=4_000),
            file("attrs", b"a", pax={"SCHILY.xattr.user.foo": "bar", "mtime": "5000.123456789"}),
        ]
    )
    dest = tmp_path / "layer"
    diff_id = unpack(dest, tar, media_type=media_type)

    assert diff_id == sha256(tar)
    assert leftovers(tmp_path) == []
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert dest.stat().st_mtime == 1_000

    b = (dest / "bin").lstat()
    assert (stat.S_IMODE(b.st_mode), b.st_uid, b.st_gid, b.st_mtime) == (0o711, 2, 3, 2_000)
    t = (dest / "bin/tool").lstat()
    assert stat.S_IMODE(t.st_mode) == 0o4755 and t.st_mtime == 3_000
    assert (dest / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    g = (dest / "bin/group-tool").lstat()
    assert (stat.S_IMODE(g.st_mode), g.st_uid, g.st_gid) == (0o2711, 1000, 50)
    assert stat.S_IMODE((dest / "tmp").lstat().st_mode) == 0o1777

    data = (dest / "etc/data").lstat()
    assert (data.st_uid, data.st_gid, stat.S_IMODE(data.st_mode)) == (1000, 1000, 0o600)
    assert data.st_ino == (dest / "etc/data-link").lstat().st_ino and data.st_nlink == 2
    # Implicitly created parent directory.
    assert stat.S_IMODE((dest / "etc").lstat().st_mode) == 0o755

    assert os.readlink(dest / "etc/rel") == "../bin/tool"
    assert os.readlink(dest / "etc/abs") == "/does/not/exist"

    fifo = (dest / "run/fifo").lstat()
    assert stat.S_ISFIFO(fifo.st_mode)
    assert (stat.S_IMODE(fifo.st_mode), fifo.st_uid, fifo.st_gid, fifo.st_mtime) == (
        0o620,
        5,
        6,
        4_000,
    )
    assert xattrs(dest / "attrs") == {"user.foo": b"bar"}
    assert (dest / "attrs").lstat().st_mtime_ns == 5_000_123_456_789


def test_binary_security_capability_survives_chown(tmp_path: Path) -> None:
    # tarfile decodes PAX values; a capability blob is not UTF-8.
    info = tarfile.TarInfo("bin/ping")
    info.mode, info.uid, info.gid = 0o755, 0, 1
    binary = b"\xff\xfe\x00\x80 not utf-8"
    info.pax_headers = {
        "SCHILY.xattr.security.capability": CAP_NET_BIND_SERVICE.decode("utf-8", "surrogateescape"),
        "SCHILY.xattr.user.binary": binary.decode("utf-8", "surrogateescape"),
    }
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, errors="surrogateescape"
    ) as t:
        info.size = 4
        t.addfile(info, io.BytesIO(b"ping"))
    dest = tmp_path / "layer"
    unpack(dest, buf.getvalue())
    assert xattrs(dest / "bin/ping") == {
        "security.capability": CAP_NET_BIND_SERVICE,
        "user.binary": binary,
    }
    assert (dest / "bin/ping").lstat().st_gid == 1


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    tar = make_tar(
        [
            dir_("etc/"),
            file("etc/.wh.passwd"),
            dir_("var/"),
            file("var/.wh..wh..opq"),
            file("var/kept", b"k"),
            file("usr/lib/.wh.gone"),  # parent not in the layer: made implicitly
            file(".wh..wh.plnk"),  # aufs bookkeeping: skipped
        ]
    )
    dest = tmp_path / "layer"
    unpack(dest, tar)
    assert is_whiteout(dest / "etc/passwd")
    assert stat.S_IMODE(os.lstat(dest / "etc/passwd").st_mode) == 0
    assert is_opaque(dest / "var") and (dest / "var/kept").read_bytes() == b"k"
    assert not is_opaque(dest / "etc")
    assert is_whiteout(dest / "usr/lib/gone")
    assert sorted(os.listdir(dest)) == ["etc", "usr", "var"]


def test_whiteout_and_entry_of_the_same_name(tmp_path: Path) -> None:
    # A whiteout deletes only what lower layers have: this layer's entry stays,
    # and where it is a directory, nothing of the lower one may show through.
    tar = make_tar(
        [
            file(".wh.a"),
            dir_("a/"),  # replaces the whiteout: opaque
            file("a/x", b"x"),
            dir_("b/"),
            file(".wh.b"),  # after the directory: opaque too
            file("c", b"c"),
            file(".wh.c"),  # after a file: the file stays
            file(".wh.d"),
            file("d", b"d"),  # replaces the whiteout
            file("f", b"file"),
            dir_("f/"),  # a file that replaced a lower dir, then a dir: opaque
        ]
    )
    dest = tmp_path / "layer"
    unpack(dest, tar)
    assert is_opaque(dest / "a") and (dest / "a/x").read_bytes() == b"x"
    assert is_opaque(dest / "b")
    assert (dest / "c").read_bytes() == b"c"
    assert (dest / "d").read_bytes() == b"d"
    assert (dest / "f").is_dir() and is_opaque(dest / "f")


def test_whiteout_below_a_replaced_directory_is_moot(tmp_path: Path) -> None:
    # What umoci writes when a directory became a file.
    tar = make_tar([file("d2", b"now a file"), file("d2/.wh.y"), file("d2/.wh..wh..opq")])
    dest = tmp_path / "layer"
    unpack(dest, tar)
    assert (dest / "d2").read_bytes() == b"now a file"


def test_duplicate_entries_the_later_one_wins(tmp_path: Path) -> None:
    tar = make_tar(
        [
            file("f", b"first", mode=0o600),
            file("f", b"second", mode=0o644),
            dir_("d/", mode=0o700),
            file("d/inner", b"i"),
            dir_("d/", mode=0o750, mtime=7),  # merges, new metadata
            dir_("gone/"),
            file("gone/inner"),
            file("gone", b"was a directory"),
            symlink("s", "/etc/passwd"),
            file("s", b"replaces the link, never writes through it"),
            file("h", b"h"),
            hardlink("h2", "h"),
            file("h", b"new h"),  # the link keeps the old inode
        ]
    )
    dest = tmp_path / "layer"
    unpack(dest, tar)
    assert (dest / "f").read_bytes() == b"second"
    assert stat.S_IMODE((dest / "f").lstat().st_mode) == 0o644
    assert (dest / "d/inner").exists()
    assert stat.S_IMODE((dest / "d").lstat().st_mode) == 0o750
    assert (dest / "d").lstat().st_mtime == 7
    assert (dest / "gone").read_bytes() == b"was a directory"
    assert (dest / "s").read_bytes().startswith(b"replaces")
    assert not (dest / "s").is_symlink()
    assert (dest / "h").read_bytes() == b"new h" and (dest / "h2").read_bytes() == b"h"


def test_device_nodes_only_when_allowed(tmp_path: Path) -> None:
    tar = make_tar(
        [
            E("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
            E("dev/loop0", tarfile.BLKTYPE, mode=0o660, gid=6, devmajor=7, devminor=0),
        ]
    )
    dest = tmp_path / "layer"
    unpack(dest, tar, limits=UnpackLimits(allow_devices=True))
    null = (dest / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = (dest / "dev/loop0").lstat()
    assert stat.S_ISBLK(loop.st_mode) and loop.st_gid == 6


def test_empty_layer(tmp_path: Path) -> None:
    # What docker writes for a layer without changes: 1024 zero bytes.
    tar = bytes(1024)
    dest = tmp_path / "layer"
    assert unpack(dest, tar, media_type=TAR_GZIP) == sha256(tar)
    assert os.listdir(dest) == []
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755


def test_padding_after_the_archive_is_hashed(tmp_path: Path) -> None:
    tar = make_tar([file("a", b"a")]) + bytes(10240)
    assert unpack(tmp_path / "layer", tar, media_type=TAR_GZIP) == sha256(tar)


def test_multi_member_gzip_and_multi_frame_zstd(tmp_path: Path) -> None:
    tar = make_tar([file("a", b"a" * 100_000), file("b", b"b")])
    half = len(tar) // 2
    for i, (media_type, blob) in enumerate(
        [
            (TAR_GZIP, gz(tar[:half]) + gz(tar[half:])),
            (TAR_ZSTD, zst(tar[:half]) + zst(tar[half:])),
        ]
    ):
        dest = tmp_path / f"layer{i}"
        assert unpack(dest, tar, media_type=media_type, blob=blob) == sha256(tar)
        assert (dest / "a").read_bytes() == b"a" * 100_000


def test_media_types(tmp_path: Path) -> None:
    tar = make_tar([file("a", b"a")])
    for i, (media_type, compression) in enumerate(MEDIA_TYPES.items()):
        blob = {"none": tar, "gzip": gz(tar), "zstd": zst(tar)}[compression.value]
        unpack(tmp_path / f"l{i}", tar, media_type=media_type, blob=blob)
    assert "application/vnd.docker.image.rootfs.diff.tar.gzip" in MEDIA_TYPES
    with pytest.raises(UnpackError, match="unsupported media type"):
        unpack(
            tmp_path / "x", tar, media_type="application/vnd.oci.image.layer.v1.tar+bzip2", blob=tar
        )
    assert not (tmp_path / "x").exists()


def test_digests_are_checked(tmp_path: Path) -> None:
    tar = make_tar([file("a", b"a")])
    blob = gz(tar)
    other = sha256(b"something else")
    cases = [(other, sha256(tar), "digest mismatch"), (sha256(blob), other, "diff ID mismatch")]
    for i, (digest, diff_id, message) in enumerate(cases):
        dest = tmp_path / f"layer{i}"
        with pytest.raises(LayerDigestError, match=message):
            unpack_layer(
                io.BytesIO(blob),
                TAR_GZIP,
                dest,
                expected_digest=digest,
                expected_diff_id=diff_id,
                durable=False,
            )
        assert not dest.exists()
    assert leftovers(tmp_path) == []
    # Unverified: still computes and returns the diff ID.
    got = unpack_layer(
        io.BytesIO(blob), TAR_GZIP, tmp_path / "ok", expected_digest=None, expected_diff_id=None
    )
    assert got == sha256(tar)
    with pytest.raises(UnpackError, match="invalid layer digest"):
        unpack_layer(
            io.BytesIO(blob),
            TAR_GZIP,
            tmp_path / "bad",
            expected_digest="md5:00",
            expected_diff_id=None,
        )


def test_sha512_digests(tmp_path: Path) -> None:
    import hashlib

    tar = make_tar([file("a", b"a")])
    diff_id = "sha512:" + hashlib.sha512(tar).hexdigest()
    got = unpack_layer(
        io.BytesIO(tar),
        TAR,
        tmp_path / "l",
        expected_digest=sha256(tar),
        expected_diff_id=diff_id,
        durable=False,
    )
    assert got == diff_id


def test_existing_destination_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "layer"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(UnpackError, match="already exists"):
        unpack(dest, make_tar([file("a")]))
    assert os.listdir(dest) == ["keep"]
    assert leftovers(tmp_path) == []
