"""render_layers, and directories a layer only implies (lower_dirs)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from podman_sd.errors import UnpackError
from podman_sd.unpack import render_layers, unpack_layer
from podman_sd.unpack.tree import remove_path

from .tarbuild import TAR, describe, dir_, file, hardlink, make_tar, symlink, unpack, xattrs


def stack(tmp_path: Path, *layers: bytes) -> list[Path]:
    """Unpack layers bottom first, each on top of the ones before."""
    dirs: list[Path] = []
    for i, tar in enumerate(layers):
        dest = tmp_path / f"layer{i}"
        unpack_layer(
            io.BytesIO(tar),
            TAR,
            dest,
            expected_digest=None,
            expected_diff_id=None,
            lower_dirs=dirs,
            durable=False,
        )
        dirs.append(dest)
    return dirs


BASE = make_tar(
    [
        dir_("./", mode=0o755, mtime=100),
        dir_("etc/", mode=0o755, mtime=100),
        file("etc/passwd", b"root\n", mtime=100),
        file("etc/group", b"root\n", mtime=100),
        dir_("home/", mtime=100),
        dir_(
            "home/user/",
            mode=0o700,
            uid=1000,
            gid=1000,
            mtime=100,
            pax={"SCHILY.xattr.user.note": "private"},
        ),
        file("home/user/notes", b"mine", uid=1000, gid=1000, mtime=100),
        dir_("var/", mtime=100),
        dir_("var/cache/", mtime=100),
        file("var/cache/a", b"a", mtime=100),
        dir_("var/lib/", mtime=100),
        file("bin", b"was a file", mtime=100),
        dir_("tree/", mtime=100),
        dir_("tree/deep/", mtime=100),
        file("tree/deep/x", b"x", mtime=100),
        file("shared", b"one inode", mtime=100),
        hardlink("shared-too", "shared"),
    ]
)


def test_render_applies_whiteouts_opaque_dirs_and_replacements(tmp_path: Path) -> None:
    top = make_tar(
        [
            file("etc/.wh.group"),
            dir_("var/", mtime=200),
            file("var/.wh..wh..opq"),
            file("var/fresh", b"f"),
            dir_("bin/", mtime=200),  # a file becomes a directory
            symlink("bin/sh", "busybox"),
            file("tree", b"a file now", mtime=200),  # a directory becomes a file
            file("shared", b"replaced"),  # breaks the hard link, as tar does
        ]
    )
    dirs = stack(tmp_path, BASE, top)
    out = tmp_path / "out"
    render_layers(dirs, out)
    tree = describe(out)
    assert sorted(tree) == [
        "bin",
        "bin/sh",
        "etc",
        "etc/passwd",
        "home",
        "home/user",
        "home/user/notes",
        "shared",
        "shared-too",
        "tree",
        "var",
        "var/fresh",
    ]
    assert (out / "tree").read_bytes() == b"a file now"
    assert (out / "shared").read_bytes() == b"replaced"
    assert (out / "shared-too").read_bytes() == b"one inode"
    # Implied by the top layer: the lower directory's metadata shows.
    assert tree["home/user"][1:4] == (oct(0o700), 1000, 1000)
    assert (out / "etc").stat().st_mtime == 100
    # Nothing of overlayfs's own attributes leaks into the rendered tree.
    assert "trusted.overlay.opaque" not in xattrs(out / "var")


def test_implied_directories_take_lower_metadata(tmp_path: Path) -> None:
    top = make_tar([file("home/user/notes", b"changed", uid=1000, gid=1000)])
    dirs = stack(tmp_path, BASE, top)
    user = (dirs[1] / "home/user").stat()
    assert (stat.S_IMODE(user.st_mode), user.st_uid, user.st_gid) == (0o700, 1000, 1000)
    assert user.st_mtime == 100
    assert xattrs(dirs[1] / "home/user") == {"user.note": b"private"}
    # The layer root without a "./" entry shows the lower root too.
    assert dirs[1].stat().st_mtime == 100
    # Without lower layers: root-owned 0755, the docker default.
    alone = tmp_path / "alone"
    unpack(alone, top)
    st = (alone / "home/user").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o755, 0)


def test_implied_directories_respect_whiteouts_and_opaque(tmp_path: Path) -> None:
    middle = make_tar(
        [
            file("home/.wh.user"),  # home/user is gone
            dir_("var/", mode=0o750, mtime=300),
            file("var/.wh..wh..opq"),  # nothing of the lower var shows
        ]
    )
    top = make_tar([file("home/user/new"), file("var/cache/b"), file("etc/new")])
    dirs = stack(tmp_path, BASE, middle, top)
    assert stat.S_IMODE((dirs[2] / "home/user").stat().st_mode) == 0o755
    assert (dirs[2] / "home/user").stat().st_uid == 0
    assert (dirs[2] / "var").stat().st_mtime == 300  # from the middle layer
    assert (dirs[2] / "var/cache").stat().st_mtime != 100  # hidden by the opaque var
    assert (dirs[2] / "etc").stat().st_mtime == 100


def test_render_hard_links_and_special_files(tmp_path: Path) -> None:
    dirs = stack(tmp_path, BASE)
    out = tmp_path / "out"
    render_layers(dirs, out)
    assert (out / "shared").stat().st_ino == (out / "shared-too").stat().st_ino
    assert describe(out) == describe(dirs[0])


def test_render_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    dirs = stack(tmp_path, BASE)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine").write_text("x")
    with pytest.raises(UnpackError, match="not an empty directory"):
        render_layers(dirs, out)
    assert os.listdir(out) == ["mine"]


def test_render_cleans_up_after_a_failure(tmp_path: Path) -> None:
    dirs = stack(tmp_path, BASE)
    out = tmp_path / "out"
    with pytest.raises(UnpackError, match="render"):
        render_layers([*dirs, tmp_path / "missing"], out)
    assert not out.exists()


def test_render_deep_trees(tmp_path: Path) -> None:
    # Deeper than Python's recursion limit would allow a recursive walk (or
    # shutil.rmtree, so the test removes what it made itself).
    deep = "/".join(["d"] * 1500)
    try:
        dirs = stack(tmp_path, make_tar([file(f"{deep}/leaf", b"bottom")]))
        out = tmp_path / "out"
        render_layers(dirs, out)
        assert (out / deep / "leaf").read_bytes() == b"bottom"
    finally:
        for child in tmp_path.iterdir():
            remove_path(child)
    assert os.listdir(tmp_path) == []


def test_remove_tree_is_iterative_and_never_follows_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    victim = tmp_path / "victim"
    victim.mkdir()
    # Made level by level: pathlib's mkdir(parents=True) recurses too.
    fd = os.open(victim, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.symlink(outside, "link", dir_fd=fd)
    os.close(fd)
    (victim / "wide").mkdir()
    for i in range(300):
        (victim / "wide" / f"sub{i}").mkdir()
        (victim / "wide" / f"file{i}").write_text("x")
    os.symlink(outside, victim / "link")
    remove_path(victim)
    assert sorted(os.listdir(tmp_path)) == ["outside"]
    assert (outside / "keep").read_text() == "keep"
