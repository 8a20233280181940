"""OCI whiteouts in, overlayfs whiteouts out.

The OCI image spec marks deletions with files: ``.wh.NAME`` hides NAME of the
lower layers and ``.wh..wh..opq`` hides every lower entry of its directory.
overlayfs (Documentation/filesystems/overlayfs.rst) marks them on the
filesystem instead: a character device 0/0 named NAME, and the extended
attribute ``trusted.overlay.opaque="y"`` on the directory. Layers are stored
in overlayfs's form so that they can be stacked as lower layers directly.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

OCI_PREFIX: Final = ".wh."
OCI_OPAQUE: Final = ".wh..wh..opq"
# ".wh..wh." names other than the opaque marker are aufs bookkeeping
# (".wh..wh.plnk", ".wh..wh.aufs") that docker skips too.
OCI_META_PREFIX: Final = ".wh..wh."

OPAQUE_XATTR: Final = "trusted.overlay.opaque"
# overlayfs's private attributes (opaque, redirect, origin, metacopy, ...),
# also under "user." when mounted with userxattr: never taken from a layer.
OVERLAY_XATTR_PREFIXES: Final = ("trusted.overlay.", "user.overlay.")


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def make_whiteout(parent_fd: int, name: str) -> None:
    # Mode 0, as overlayfs makes its own (fs/overlayfs/dir.c, OVL_WHITEOUT_MODE).
    os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent_fd)


def mark_opaque(dir_fd: int) -> None:
    os.setxattr(dir_fd, OPAQUE_XATTR, b"y")


def is_opaque(dir_fd: int) -> bool:
    try:
        return os.getxattr(dir_fd, OPAQUE_XATTR) == b"y"
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP):
            return False
        raise


def is_overlay_xattr(name: str) -> bool:
    return name.startswith(OVERLAY_XATTR_PREFIXES)
