"""Flatten overlayfs-format layer directories into one plain tree.

This is what an overlay mount of the layers shows, written out as ordinary
files (rkt's ``image render``): for each layer, bottom first, a whiteout
(character device 0/0) removes the name, an opaque directory
(``trusted.overlay.opaque``) drops everything the lower layers put in it, a
directory merges into a directory, and anything else replaces what was there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from podman_sd.errors import UnpackError
from podman_sd.unpack import whiteout
from podman_sd.unpack.fault import LayerFault
from podman_sd.unpack.lower import Meta
from podman_sd.unpack.tree import (
    O_DIR,
    DirTree,
    Parts,
    lstat_at,
    proc_path,
    remove_at,
    remove_path,
    show,
)

_COPY_CHUNK: Final = 1 << 24
_NEW_FILE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SOURCE: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def render_layers(layer_dirs: Sequence[Path], dest: Path) -> None:
    """Write the merged view of ``layer_dirs`` (bottom first) into ``dest``.

    ``dest`` is created, or must be an empty directory. On failure what was
    written is removed again.
    """
    created = not os.path.lexists(dest)
    try:
        if created:
            os.mkdir(dest, 0o700)
        elif not dest.is_dir() or dest.is_symlink() or any(dest.iterdir()):
            raise UnpackError(f"render: {dest} is not an empty directory")
    except OSError as e:
        raise UnpackError(f"render: cannot create {dest}: {e.strerror}") from e
    renderer: _Renderer | None = None
    try:
        with ExitStack() as stack:
            dest_fd = os.open(dest, O_DIR)
            stack.callback(os.close, dest_fd)
            renderer = _Renderer(dest_fd)
            stack.callback(renderer.close)
            for layer in layer_dirs:
                renderer.layer = layer
                layer_fd = os.open(layer, O_DIR)
                stack.callback(os.close, layer_fd)
                renderer.apply(layer_fd)
            renderer.finish()
    except BaseException as e:
        if created:
            remove_path(dest)
        else:
            _empty(dest)
        if isinstance(e, (OSError, LayerFault)):
            where = f"render {renderer.layer}: {show(renderer.current)}" if renderer else "render"
            message = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise UnpackError(f"{where}: {message}") from e
        raise


def _empty(path: Path) -> None:
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for entry in list(entries):
            if entry.is_dir(follow_symlinks=False):
                remove_path(Path(entry.path))
            else:
                os.unlink(entry.path)


@dataclass(frozen=True)
class _DirMeta:
    ino: int  # of the destination directory it belongs to
    meta: Meta


class _Renderer:
    def __init__(self, dest_fd: int) -> None:
        self.dest = DirTree(dest_fd)
        self.layer: Path | None = None
        self.current: Parts = ()
        # The topmost layer that has a directory gives its metadata, applied
        # at the end, deepest first (writing below changes the mtime).
        self._dirs: dict[Parts, _DirMeta] = {}
        # (device, inode) of this layer -> where it was first copied to.
        self._links: dict[tuple[int, int], Parts] = {}

    def close(self) -> None:
        self.dest.close()

    def apply(self, layer_fd: int) -> None:
        self._links.clear()
        # Depth first, by explicit stack: layers can nest deeper than Python
        # recursion or the descriptor limit allows.
        source = DirTree(layer_fd)
        try:
            pending: list[Parts] = [()]
            while pending:
                parts = pending.pop()
                self.current = parts
                self.dest.trim()
                source.trim()
                pending.extend(self._merge_dir(source.open_dir(parts, create=False), parts))
        finally:
            source.close()

    def _merge_dir(self, src_fd: int, parts: Parts) -> list[Parts]:
        dst_fd = self.dest.open_dir(parts, create=False)
        dst_ino = os.fstat(dst_fd).st_ino
        src = os.fstat(src_fd)
        meta = Meta(
            uid=src.st_uid,
            gid=src.st_gid,
            mode=stat.S_IMODE(src.st_mode),
            atime_ns=src.st_atime_ns,
            mtime_ns=src.st_mtime_ns,
            xattrs=_xattrs(src_fd),
        )
        self._dirs[parts] = _DirMeta(dst_ino, meta)
        if whiteout.is_opaque(src_fd):
            for name in os.listdir(dst_fd):
                self._remove(dst_fd, (*parts, name))
        subdirs: list[Parts] = []
        for name in sorted(os.listdir(src_fd)):
            path = (*parts, name)
            self.current = path
            st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
            if whiteout.is_whiteout(st):
                self._remove(dst_fd, path)
            elif stat.S_ISDIR(st.st_mode):
                existing = lstat_at(dst_fd, name)
                if existing is None or not stat.S_ISDIR(existing.st_mode):
                    self._remove(dst_fd, path)
                    os.mkdir(name, 0o700, dir_fd=dst_fd)
                subdirs.append(path)
            else:
                self._remove(dst_fd, path)
                self._copy(src_fd, dst_fd, name, st, path)
        subdirs.reverse()  # popped in name order
        return subdirs

    def _remove(self, dst_fd: int, path: Parts) -> None:
        st = lstat_at(dst_fd, path[-1])
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                self.dest.forget(path)
            remove_at(dst_fd, path[-1], st)

    def _copy(self, src_fd: int, dst_fd: int, name: str, st: os.stat_result, path: Parts) -> None:
        mode = st.st_mode
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            first = self._links.get(key)
            if first is not None:
                first_dir = self.dest.open_dir(first[:-1], create=False)
                os.link(
                    first[-1], name, src_dir_fd=first_dir, dst_dir_fd=dst_fd, follow_symlinks=False
                )
                return
            self._copy_file(src_fd, dst_fd, name, st)
            if st.st_nlink > 1:
                self._links[key] = path
            return
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst_fd)
        else:
            raise LayerFault(f"unknown file type {stat.S_IFMT(mode):o}")
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_fd)  # made just now: not a link
        source = proc_path(src_fd, name)
        target = proc_path(dst_fd, name)
        for attr, value in _xattrs(source).items():
            os.setxattr(target, attr, value, follow_symlinks=False)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)

    def _copy_file(self, src_fd: int, dst_fd: int, name: str, st: os.stat_result) -> None:
        fin = os.open(name, _SOURCE, dir_fd=src_fd)
        try:
            fout = os.open(name, _NEW_FILE, 0o600, dir_fd=dst_fd)
            try:
                _copy_data(fin, fout)
                # chown clears setuid and security.capability: chmod and
                # xattrs after it, times last.
                os.fchown(fout, st.st_uid, st.st_gid)
                os.fchmod(fout, stat.S_IMODE(st.st_mode))
                for key, value in _xattrs(fin).items():
                    os.setxattr(fout, key, value)
                os.utime(fout, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(fout)
        finally:
            os.close(fin)

    def finish(self) -> None:
        for parts, found in sorted(self._dirs.items(), key=lambda item: len(item[0]), reverse=True):
            self.current = parts
            self.dest.trim()
            try:
                fd = self.dest.open_dir(parts, create=False)
            except LayerFault:
                continue  # removed by a later layer
            if os.fstat(fd).st_ino != found.ino:
                continue
            meta = found.meta
            os.fchown(fd, meta.uid, meta.gid)
            os.fchmod(fd, meta.mode)
            for key, value in meta.xattrs.items():
                os.setxattr(fd, key, value)
            os.utime(fd, ns=(meta.atime_ns, meta.mtime_ns))
        self.current = ()


def _xattrs(target: int | str) -> dict[str, bytes]:
    """The extended attributes to carry over: all but overlayfs's own."""
    follow = isinstance(target, int)
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError as e:
        if e.errno == errno.ENOTSUP:
            return {}
        raise
    return {
        name: os.getxattr(target, name, follow_symlinks=follow)
        for name in names
        if not whiteout.is_overlay_xattr(name)
    }


def _copy_data(fin: int, fout: int) -> None:
    try:
        while os.copy_file_range(fin, fout, _COPY_CHUNK):
            pass
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    # copy_file_range may have copied part: continue from where both are.
    while data := os.read(fin, 1 << 20):
        view = memoryview(data)
        while view:
            view = view[os.write(fout, view) :]
