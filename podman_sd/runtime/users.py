"""Resolving an image's or manifest's user to numeric ids, like runc does.

``User`` in an image config may be ``uid``, ``uid:gid``, ``name`` or
``name:group``; names are looked up in the image's own /etc/passwd and
/etc/group, never the host's.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from podman_sd.errors import RuntimeSetupError

# More than any real /etc/passwd or /etc/group; the image is a stranger's.
MAX_TABLE_BYTES = 4 * 1024 * 1024


def _table(path: Path) -> list[list[str]]:
    """The lines of a passwd or group file, split at ":". Only a regular file
    counts, read up to a bound: an image's /etc/passwd could be a symlink to
    /dev/zero or a FIFO (this runs before the app is in its scope)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        data = os.read(fd, MAX_TABLE_BYTES)
    except OSError:
        return []
    finally:
        os.close(fd)
    text = data.decode(errors="replace")
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(spec: str, root: Path) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, supplementary gids from /etc/group) for SPEC inside ROOT."""
    user, _, group = (spec or "0").partition(":")
    passwd = _table(root / "etc/passwd")
    groups = _table(root / "etc/group")
    uid: int | None = None
    gid: int | None = None
    username = None
    if user.isdigit():
        uid = int(user)
        for entry in passwd:
            if len(entry) > 3 and entry[2] == user:
                username = entry[0]
                gid = int(entry[3]) if entry[3].isdigit() else None
                break
    else:
        for entry in passwd:
            if len(entry) > 3 and entry[0] == user and entry[2].isdigit() and entry[3].isdigit():
                uid, gid, username = int(entry[2]), int(entry[3]), user
                break
        if uid is None:
            raise RuntimeSetupError(f"user {user!r} is not in the image's /etc/passwd")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            match = [e for e in groups if len(e) > 2 and e[0] == group and e[2].isdigit()]
            if not match:
                raise RuntimeSetupError(f"group {group!r} is not in the image's /etc/group")
            gid = int(match[0][2])
    if gid is None:
        gid = 0  # as runc: a uid without a passwd entry runs with group 0
    extra = tuple(
        int(e[2]) for e in groups if len(e) > 3 and e[2].isdigit() and username in e[3].split(",")
    )
    assert uid is not None
    return uid, gid, extra


def home_of(uid: int, root: Path) -> str:
    """The home directory of UID in ROOT's /etc/passwd, or "/" (runc's HOME)."""
    for entry in _table(root / "etc/passwd"):
        if len(entry) > 5 and entry[2] == str(uid) and entry[5]:
            return entry[5]
    return "/"
