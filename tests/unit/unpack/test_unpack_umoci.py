"""Reference comparison: unpack_layer + render_layers against ``umoci unpack``.

Images are built with umoci from busybox-static, one layer per change set
(add, replace and delete files and whole directories, a directory replaced by
a file and back, hard links, symlinks, setuid/setgid, sticky bits, owners,
xattrs, a FIFO and a device), then read straight from the OCI layout, each
layer unpacked into its own directory, the stack rendered, and the result
compared with umoci's own unpack of the same tag. skopeo recompresses the
image with zstd for a second run through the zstd path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podman_sd.unpack import UnpackLimits, render_layers, unpack_layer

from .tarbuild import describe, dir_, file, gz, make_tar, sha256

BUSYBOX = Path("/bin/busybox")
TOOLS = ("umoci", "skopeo")
CAP_NET_BIND_SERVICE = bytes.fromhex("0100000200040000000000000000000000000000")

_missing = [tool for tool in TOOLS if shutil.which(tool) is None]
if not BUSYBOX.exists():
    _missing.append(str(BUSYBOX))
if _missing and os.environ.get("CI") != "true":
    pytest.skip(f"needs {', '.join(_missing)}", allow_module_level=True)


def run(*args: str | Path) -> None:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert result.returncode == 0, f"{args}: {result.stderr}"


def repack(layout: Path, bundle: Path, change: Callable[[Path], None]) -> None:
    change(bundle / "rootfs")
    run("umoci", "repack", "--refresh-bundle", "--image", f"{layout}:t", bundle)


def layer1(r: Path) -> None:
    for d in ("bin", "etc", "d1/sub", "d2", "d3/deep/er", "usr/bin", "home/user", "run"):
        (r / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, r / "bin/busybox")
    os.symlink("busybox", r / "bin/sh")
    os.symlink("/bin/busybox", r / "bin/ls")
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (r / "etc/group").write_text("root:x:0:\n")
    (r / "etc/a").write_text("shared inode\n")
    os.link(r / "etc/a", r / "etc/b")
    os.setxattr(r / "etc/passwd", "user.foo", b"bar")
    (r / "d1/sub/x").write_text("x\n")
    (r / "d2/y").write_text("y\n")
    (r / "d3/deep/er/file").write_text("deep\n")
    (r / "usr/bin/suid").write_bytes(b"\x7fELF suid")
    os.chmod(r / "usr/bin/suid", 0o4755)
    (r / "usr/bin/sgid").write_bytes(b"\x7fELF sgid")
    os.chown(r / "usr/bin/sgid", 0, 50)
    os.chmod(r / "usr/bin/sgid", 0o2711)
    (r / "usr/bin/ping").write_bytes(b"\x7fELF ping")
    os.setxattr(r / "usr/bin/ping", "security.capability", CAP_NET_BIND_SERVICE)
    (r / "tmp").mkdir(mode=0o1777)
    os.chmod(r / "tmp", 0o1777)
    (r / "home/user/notes").write_text("mine\n")
    os.chown(r / "home/user/notes", 1000, 1000)
    os.chown(r / "home/user", 1000, 1000)
    os.chmod(r / "home/user", 0o700)
    os.mkfifo(r / "run/fifo", 0o620)
    (r / "dev").mkdir()
    os.mknod(r / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (r / "var/empty").mkdir(parents=True)


def layer2(r: Path) -> None:
    (r / "etc/group").unlink()  # delete a file
    shutil.rmtree(r / "d1")  # delete a whole tree
    shutil.rmtree(r / "d2")
    (r / "d2").write_text("a directory no more\n")  # directory -> file
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/:/\n")
    os.setxattr(r / "etc/passwd", "user.foo", b"baz")
    os.chown(r / "home/user/notes", 1001, 1001)
    os.link(r / "usr/bin/suid", r / "usr/bin/suid-link")  # hard link to an older file
    (r / "etc/b").unlink()  # one side of a hard link
    os.unlink(r / "bin/ls")
    os.symlink("busybox", r / "bin/ls")  # new symlink target
    os.chmod(r / "var/empty", 0o750)
    os.chmod(r / "usr/bin/suid", 0o4711)


def layer3(r: Path) -> None:
    (r / "d2").unlink()
    (r / "d2").mkdir()  # file -> directory again
    (r / "d2/z").write_text("z\n")
    (r / "d1").write_text("d1 is a file now\n")
    os.unlink(r / "bin/sh")
    os.unlink(r / "etc/a")
    os.symlink("passwd", r / "etc/a")  # file -> symlink
    os.unlink(r / "bin/ls")
    (r / "bin/ls").mkdir()  # symlink -> directory
    (r / "bin/ls/inside").write_text("inside\n")
    (r / "opt/new/tree").mkdir(parents=True)
    (r / "opt/new/tree/leaf").write_text("leaf\n")


def layer4(r: Path) -> None:
    shutil.rmtree(r / "d3/deep")  # delete a subtree and add next to it
    (r / "d3/other").write_text("other\n")
    os.unlink(r / "usr/bin/suid")  # the link made in layer 2 survives
    os.removexattr(r / "etc/passwd", "user.foo")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("umoci")
    layout = base / "image"
    bundle = base / "bundle"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", f"{layout}:t")
    run("umoci", "unpack", "--image", f"{layout}:t", bundle)
    for change in (layer1, layer2, layer3, layer4):
        repack(layout, bundle, change)
    return layout


def read_image(layout: Path, tag: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The layer descriptors and diff IDs of a tag, read from the layout itself."""
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    manifest = json.loads(blob_path(layout, descriptor["digest"]).read_text())
    config = json.loads(blob_path(layout, manifest["config"]["digest"]).read_text())
    layers: list[dict[str, Any]] = manifest["layers"]
    diff_ids: list[str] = config["rootfs"]["diff_ids"]
    assert len(layers) == len(diff_ids)
    return layers, diff_ids


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return layout / "blobs" / algorithm / encoded


def write_blob(layout: Path, data: bytes) -> str:
    digest = sha256(data)
    blob_path(layout, digest).write_bytes(data)
    return digest


def add_layer(layout: Path, tag: str, new_tag: str, tar: bytes) -> None:
    """Put a hand-written layer on top of a tag, as a new tag."""
    index = json.loads((layout / "index.json").read_text())
    (old,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    manifest = json.loads(blob_path(layout, old["digest"]).read_text())
    config = json.loads(blob_path(layout, manifest["config"]["digest"]).read_text())
    blob = gz(tar)
    config["rootfs"]["diff_ids"].append(sha256(tar))
    manifest["layers"].append(
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": write_blob(layout, blob),
            "size": len(blob),
        }
    )
    config_bytes = json.dumps(config).encode()
    manifest["config"]["digest"] = write_blob(layout, config_bytes)
    manifest["config"]["size"] = len(config_bytes)
    manifest_bytes = json.dumps(manifest).encode()
    index["manifests"].append(
        {
            "mediaType": old["mediaType"],
            "digest": write_blob(layout, manifest_bytes),
            "size": len(manifest_bytes),
            "annotations": {"org.opencontainers.image.ref.name": new_tag},
        }
    )
    (layout / "index.json").write_text(json.dumps(index))


def render_image(layout: Path, tag: str, work: Path) -> tuple[Path, list[str]]:
    layers, diff_ids = read_image(layout, tag)
    store = work / "layers"
    store.mkdir()
    dirs: list[Path] = []
    media_types = []
    for descriptor, diff_id in zip(layers, diff_ids, strict=True):
        dest = store / diff_id.replace(":", "-")
        if not dest.exists():  # a layer shared by two tags is unpacked once
            with blob_path(layout, descriptor["digest"]).open("rb") as src:
                got = unpack_layer(
                    src,
                    descriptor["mediaType"],
                    dest,
                    expected_digest=descriptor["digest"],
                    expected_diff_id=diff_id,
                    limits=UnpackLimits(allow_devices=True),
                    lower_dirs=dirs,
                    durable=False,
                )
            assert got == diff_id
        dirs.append(dest)
        media_types.append(descriptor["mediaType"])
    rootfs = work / "rendered"
    render_layers(dirs, rootfs)
    return rootfs, media_types


def umoci_rootfs(layout: Path, tag: str, work: Path) -> Path:
    bundle = work / "umoci-bundle"
    run("umoci", "unpack", "--image", f"{layout}:{tag}", bundle)
    return bundle / "rootfs"


def assert_same_tree(ours: Path, theirs: Path) -> None:
    mine, reference = describe(ours, mtimes=True), describe(theirs, mtimes=True)
    assert sorted(mine) == sorted(reference)
    for path in sorted(reference):
        assert mine[path] == reference[path], path
    assert stat.S_IMODE(ours.stat().st_mode) == stat.S_IMODE(theirs.stat().st_mode)


def test_render_equals_umoci_unpack(layout: Path, tmp_path: Path) -> None:
    ours, media_types = render_image(layout, "t", tmp_path)
    assert len(media_types) == 4
    assert set(media_types) == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    theirs = umoci_rootfs(layout, "t", tmp_path)
    assert_same_tree(ours, theirs)
    tree = describe(ours)
    # Spot checks, so that "equal" cannot mean "equally empty".
    assert (ours / "bin/busybox").read_bytes() == BUSYBOX.read_bytes()
    assert tree["usr/bin/suid-link"][1] == oct(0o4711)
    assert tree["usr/bin/sgid"][1:4] == (oct(0o2711), 0, 50)
    assert tree["usr/bin/ping"][6] == {"security.capability": CAP_NET_BIND_SERVICE}
    assert tree["tmp"][1] == oct(0o1777)
    assert tree["etc/a"][5] == "passwd"
    assert "d1/sub" not in tree and (ours / "d1").is_file() and (ours / "d2/z").is_file()
    assert "d3/deep" not in tree and (ours / "d3/other").is_file()
    assert stat.S_ISFIFO(os.lstat(ours / "run/fifo").st_mode)
    assert tree["dev/null"][5] == (1, 3)


def test_zstd_layers_from_skopeo(layout: Path, tmp_path: Path) -> None:
    zstd_layout = tmp_path / "zstd-image"
    run(
        "skopeo",
        "copy",
        "--dest-compress-format",
        "zstd",
        f"oci:{layout}:t",
        f"oci:{zstd_layout}:t",
    )
    ours, media_types = render_image(zstd_layout, "t", tmp_path)
    assert set(media_types) == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    assert_same_tree(ours, umoci_rootfs(layout, "t", tmp_path))


def test_opaque_directories_and_same_layer_whiteouts(layout: Path, tmp_path: Path) -> None:
    # umoci does not write opaque whiteouts itself; a hand-written layer on top
    # of the umoci image checks them against umoci's reading of the spec.
    copy = tmp_path / "image"
    shutil.copytree(layout, copy, symlinks=True)
    tar = make_tar(
        [
            dir_("var/", mode=0o755, mtime=1_700_000_000),
            file("var/.wh..wh..opq"),  # hides var/empty of the lower layers
            file("var/new", b"new\n"),
            file(".wh.opt"),  # whiteout, then the same name again: only the new tree
            dir_("opt/", mode=0o700, mtime=1_700_000_000),
            file("opt/fresh", b"fresh\n"),
            file("etc/.wh.passwd"),  # no parent entry in the layer
            file("d2/.wh.z"),
            file("d2/z2", b"z2\n"),
        ]
    )
    add_layer(copy, "t", "t2", tar)
    ours, _ = render_image(copy, "t2", tmp_path)
    theirs = umoci_rootfs(copy, "t2", tmp_path)
    tree = describe(ours)
    assert "var/empty" not in tree and "var/new" in tree
    assert "opt/new" not in tree and "opt/fresh" in tree
    assert "etc/passwd" not in tree and "etc/a" in tree
    # "etc" and "d2" are only implied by the layer: they keep the lower
    # layers' metadata, mtime included.
    assert_same_tree(ours, theirs)


def test_layer_tar_of_umoci_has_what_we_expect(layout: Path) -> None:
    # Guard the fixture: the layers really contain whiteouts, hard links, xattrs.
    layers, _ = read_image(layout, "t")
    seen: set[str] = set()
    for descriptor in layers:
        with tarfile.open(blob_path(layout, descriptor["digest"])) as tar:
            for member in tar:
                if os.path.basename(member.name).startswith(".wh."):
                    seen.add("whiteout")
                if member.islnk():
                    seen.add("hardlink")
                if any(k.startswith("SCHILY.xattr.") for k in member.pax_headers):
                    seen.add("xattr")
                if member.mode & stat.S_ISUID:
                    seen.add("setuid")
    assert seen == {"whiteout", "hardlink", "xattr", "setuid"}
    assert hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()
