"""What the layers below show at a directory, for directories a layer only implies.

A layer may list ``etc/passwd`` without ``etc/`` (umoci does, so does the OCI
spec's own example). Extracted onto the merged tree, as the spec describes,
``etc`` keeps the metadata the lower layers gave it; extracted alone into an
overlayfs layer, a fresh ``etc`` would take default metadata and hide the
lower one's owner, mode and times (image-spec issues #737 and #1221, the same
fix as containers/storage's "tarbackfill"). ``LowerView`` answers "what does
the stack below show at this directory" the way overlayfs resolves it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from podman_sd.unpack import whiteout
from podman_sd.unpack.tree import O_DIR, Parts, lstat_at


@dataclass(frozen=True)
class Meta:
    """The metadata applied to one entry."""

    uid: int
    gid: int
    mode: int
    atime_ns: int
    mtime_ns: int
    xattrs: dict[str, bytes]


def dir_meta(fd: int) -> Meta:
    st = os.fstat(fd)
    names = os.listxattr(fd)
    return Meta(
        uid=st.st_uid,
        gid=st.st_gid,
        mode=stat.S_IMODE(st.st_mode),
        atime_ns=st.st_atime_ns,
        mtime_ns=st.st_mtime_ns,
        xattrs={n: os.getxattr(fd, n) for n in names if not whiteout.is_overlay_xattr(n)},
    )


class LowerView:
    """The layer directories below the one being unpacked, bottom first."""

    def __init__(self, layer_dirs: Sequence[Path]) -> None:
        self._dirs = list(layer_dirs)
        self._stack = ExitStack()
        self._fds: list[int] = []  # top first

    def __enter__(self) -> LowerView:
        for path in reversed(self._dirs):
            fd = os.open(path, O_DIR)
            self._stack.callback(os.close, fd)
            self._fds.append(fd)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def directory(self, parts: Parts) -> Meta | None:
        """The metadata of the directory the lower layers show at ``parts``, if any."""
        for layer_fd in self._fds:
            found, meta = self._look(layer_fd, parts)
            if found:
                return meta
        return None

    @staticmethod
    def _look(layer_fd: int, parts: Parts) -> tuple[bool, Meta | None]:
        """(decided, meta): decided when this layer settles the question."""
        fd = layer_fd
        with ExitStack() as stack:
            for i, name in enumerate(parts):
                st = lstat_at(fd, name)
                if st is None:
                    return False, None  # look further down
                if not stat.S_ISDIR(st.st_mode):
                    return True, None  # whiteout or non-directory hides what is below
                fd = os.open(name, O_DIR, dir_fd=fd)
                stack.callback(os.close, fd)
                if i < len(parts) - 1 and whiteout.is_opaque(fd):
                    # Nothing lower shows through an opaque ancestor.
                    child = lstat_at(fd, parts[i + 1])
                    if child is None:
                        return True, None
            return True, dir_meta(fd)
