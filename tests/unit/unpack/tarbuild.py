"""Helpers for the unpack tests: build layer archives, unpack them, describe trees."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from podman_sd.unpack import UnpackLimits, unpack_layer
from podman_sd.unpack.limits import DEFAULT_LIMITS

TAR = "application/vnd.oci.image.layer.v1.tar"
TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@dataclass
class E:
    """One tar entry to write."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)


def dir_(name: str, mode: int = 0o755, **kw: object) -> E:
    return E(name, tarfile.DIRTYPE, mode=mode, **kw)  # type: ignore[arg-type]


def file(name: str, data: bytes = b"", mode: int = 0o644, **kw: object) -> E:
    return E(name, tarfile.REGTYPE, data=data, mode=mode, **kw)  # type: ignore[arg-type]


def symlink(name: str, target: str) -> E:
    return E(name, tarfile.SYMTYPE, mode=0o777, linkname=target)


def hardlink(name: str, target: str) -> E:
    return E(name, tarfile.LNKTYPE, linkname=target)


def make_tar(entries: Iterable[E], *, end_marker: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.type
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.mtime = e.mtime
            info.linkname = e.linkname
            info.devmajor, info.devminor = e.devmajor, e.devminor
            info.pax_headers = dict(e.pax)
            info.size = len(e.data)
            tar.addfile(info, io.BytesIO(e.data) if e.data else None)
        end = tar.offset
    # Without the end-of-archive blocks that close() writes, if asked.
    return buf.getvalue() if end_marker else buf.getvalue()[:end]


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unpack(
    dest: Path,
    tar: bytes,
    *,
    media_type: str = TAR,
    blob: bytes | None = None,
    verify: bool = True,
    limits: UnpackLimits = DEFAULT_LIMITS,
    durable: bool = False,
) -> str:
    """Unpack ``blob`` (``tar``, compressed per ``media_type``) into ``dest``."""
    if blob is None:
        blob = {TAR: tar, TAR_GZIP: gz(tar), TAR_ZSTD: zst(tar)}[media_type]
    return unpack_layer(
        io.BytesIO(blob),
        media_type,
        dest,
        expected_digest=sha256(blob) if verify else None,
        expected_diff_id=sha256(tar) if verify else None,
        limits=limits,
        durable=durable,
    )


def describe(root: Path, *, mtimes: bool = False) -> dict[str, tuple[object, ...]]:
    """Every entry below root: type, mode, owner, size, content, target, xattrs."""
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            detail: object = None
            if stat.S_ISREG(kind):
                detail = hashlib.sha256(path.read_bytes()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(kind):
                detail = os.readlink(path)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                detail = (os.major(st.st_rdev), os.minor(st.st_rdev))
            record: tuple[object, ...] = (
                oct(kind),
                oct(stat.S_IMODE(st.st_mode)),
                st.st_uid,
                st.st_gid,
                st.st_size if stat.S_ISREG(kind) else None,
                detail,
                xattrs(path),
            )
            if mtimes:
                record += (st.st_mtime_ns,)
            out[rel] = record
    for group in inodes.values():
        for rel in group:
            out[rel] += (tuple(sorted(group)),)
    return out


def xattrs(path: Path) -> dict[str, bytes]:
    names = os.listxattr(path, follow_symlinks=False)
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in sorted(names)}


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything that could change below root, including times and inodes."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in ["", *dirnames, *filenames]:
            path = Path(dirpath, name)
            st = os.lstat(path)
            content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[str(path)] = (
                st.st_mode,
                st.st_ino,
                st.st_nlink,
                st.st_uid,
                st.st_gid,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                content,
                xattrs(path),
            )
    return out
