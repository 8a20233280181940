"""A directory tree that is only ever entered one component at a time.

Every directory is opened relative to its parent's descriptor with
``O_NOFOLLOW | O_DIRECTORY``, so a symbolic link anywhere on a path stops
the walk instead of leading out of the tree, whatever the archive made
earlier. Everything below works on (directory fd, name) pairs.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

from podman_sd.unpack.fault import LayerFault, LimitFault, NotADirectoryFault

Parts = tuple[str, ...]

O_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NAME_MAX: Final = 255  # include/uapi/linux/limits.h
_CACHE_SIZE: Final = 64
_REMOVE_DEPTH: Final = 64


def show(parts: Parts) -> str:
    return "/".join(parts) or "."


def split_path(name: str, what: str, max_bytes: int) -> Parts:
    """The components of a relative path in a layer; raise on anything else.

    Empty and ``.`` components are dropped (``./a//b/`` is ``a/b``), as every
    tar extractor does. ``..`` is refused even where it would stay inside:
    no honest layer needs it.
    """
    if "\0" in name:
        raise LayerFault(f"{what} contains a NUL byte")
    if len(name.encode("utf-8", "surrogateescape")) > max_bytes:
        raise LimitFault(f"{what} is longer than {max_bytes} bytes")
    if name.startswith("/"):
        raise LayerFault(f"{what} escapes the layer (absolute path)")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise LayerFault(f"{what} escapes the layer ('..' component)")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise LayerFault(f"{what} has a component longer than {NAME_MAX} bytes")
    return parts


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str, st: os.stat_result) -> None:
    """Remove a name and, for a directory, everything below it."""
    if stat.S_ISDIR(st.st_mode):
        remove_tree(dir_fd, name)
    else:
        os.unlink(name, dir_fd=dir_fd)


def remove_tree(parent_fd: int, name: str) -> None:
    """Remove a directory and everything below it, never following a link.

    Iterative, with at most ``_REMOVE_DEPTH`` descriptors open: directories
    found deeper are first moved up into the top one. A layer can nest a
    couple of thousand levels (PATH_MAX), where ``shutil.rmtree`` would
    recurse past Python's limit or run out of descriptors.
    """
    top = os.open(name, O_DIR, dir_fd=parent_fd)
    stack: list[tuple[int, str, list[str]]] = []
    try:
        stack.append((top, name, _unlink_files(top)))
        while stack:
            fd, dir_name, pending = stack[-1]
            if pending:
                child = pending.pop()
                if len(stack) >= _REMOVE_DEPTH:
                    moved = f".rm-{secrets.token_hex(8)}"
                    os.rename(child, moved, src_dir_fd=fd, dst_dir_fd=top)
                    stack[0][2].append(moved)
                else:
                    child_fd = os.open(child, O_DIR, dir_fd=fd)
                    stack.append((child_fd, child, []))
                    stack[-1][2].extend(_unlink_files(child_fd))
                continue
            stack.pop()
            os.close(fd)
            os.rmdir(dir_name, dir_fd=stack[-1][0] if stack else parent_fd)
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def remove_path(path: Path) -> None:
    """Best-effort removal of a directory tree, for cleaning up after a failure."""
    try:
        parent_fd = os.open(path.parent, O_DIR)
    except OSError:
        return
    try:
        remove_tree(parent_fd, path.name)
    except OSError:
        pass
    finally:
        os.close(parent_fd)


def _unlink_files(dir_fd: int) -> list[str]:
    """Unlink every non-directory in a directory; return the subdirectories."""
    subdirs = []
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=dir_fd)
    return subdirs


def proc_path(dir_fd: int, name: str) -> str:
    """A path for the calls that take no dir_fd (xattrs on non-regular files).

    The magic link resolves to the directory itself; only ``name`` is looked
    up, and the callers pass ``follow_symlinks=False``.
    """
    return f"/proc/self/fd/{dir_fd}/{name}"


class DirTree:
    """Descriptors of the directories below one root, opened without following links.

    The most recently used ones are cached, ancestors included (archives list
    a directory's entries together, and deep walks go up and down one chain).
    Descriptors handed out stay valid until the next ``trim`` or ``forget``;
    callers ``trim`` only between entries. At most about ``_CACHE_SIZE`` are
    open at a time, however deep the tree.
    """

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.created = 0  # directories made because an entry needed a parent
        # Called with (parts, fd) for each of those, made 0755 root-owned.
        self.on_create: Callable[[Parts, int], None] | None = None
        self._cache: dict[Parts, int] = {}  # least recently used first
        self._pinned: set[Parts] = set()  # handed out since the last trim

    def open_dir(self, parts: Parts, *, create: bool) -> int:
        if not parts:
            return self.root_fd
        fd, start = self.root_fd, 0
        for i in range(len(parts), 0, -1):
            cached = self._cache.pop(parts[:i], None)
            if cached is not None:
                self._cache[parts[:i]] = cached  # now the most recent
                fd, start = cached, i
                break
        for i in range(start, len(parts)):
            fd = self._open_child(fd, parts[: i + 1], create=create)
            self._cache[parts[: i + 1]] = fd
            self._evict(keep=parts[: i + 1])
        self._pinned.add(parts)
        return fd

    def _evict(self, keep: Parts) -> None:
        if len(self._cache) <= _CACHE_SIZE:
            return
        for key in list(self._cache):
            if len(self._cache) <= _CACHE_SIZE:
                break
            if key != keep and key not in self._pinned:
                os.close(self._cache.pop(key))

    def _open_child(self, parent_fd: int, parts: Parts, *, create: bool) -> int:
        name = parts[-1]
        try:
            return os.open(name, O_DIR, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise LayerFault(f"directory {show(parts)!r} does not exist") from None
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = lstat_at(parent_fd, name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise NotADirectoryFault(
                    f"path goes through the symbolic link {show(parts)!r}"
                ) from None
            raise NotADirectoryFault(f"{show(parts)!r} is not a directory") from None
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        self.created += 1
        fd = os.open(name, O_DIR, dir_fd=parent_fd)
        # Explicit mode: the process umask is not ours to trust.
        os.fchmod(fd, 0o755)
        if self.on_create is not None:
            self.on_create(parts, fd)
        return fd

    def forget(self, parts: Parts) -> None:
        """Drop the cached descriptors of a directory about to be removed, and below."""
        n = len(parts)
        for key in [key for key in self._cache if key[:n] == parts]:
            os.close(self._cache.pop(key))
            self._pinned.discard(key)

    def trim(self) -> None:
        self._pinned.clear()
        self._evict(keep=())

    def close(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()
        self._pinned.clear()
