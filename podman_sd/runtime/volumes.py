"""Pod volumes on the host side: hostPath and emptyDir.

- ``hostPath`` is used where it is; the ``type`` is checked, and created
  for DirectoryOrCreate / FileOrCreate, like the kubelet. podman-sd never
  removes or changes anything in it.
- ``emptyDir`` on disk lives in /var/lib/podman-sd/pods/NAME/volumes/VOL:
  it survives a restart of the pod's apps (a unit restart) and is removed
  when the pod is stopped.
- ``emptyDir`` with ``medium: Memory`` is a tmpfs (``size`` from
  ``sizeLimit``) mounted in the pod's own mount namespace, so it is shared by
  the pod's apps and can never outlive them as a mount on the host.

Volumes arrive here as plain data (see ``plan.py``), so that starting a pod
from its cached plan needs no manifest code.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

from podman_sd import syscalls as sc
from podman_sd.errors import RuntimeSetupError

HOST_PATH = "hostPath"
EMPTY_DIR = "emptyDir"
MEMORY = "memory"


# Records on the start path are NamedTuples, not dataclasses: the
# dataclasses module loads inspect and ast, some 7 ms of every pod start.
class VolumeMount(NamedTuple):
    """One bind mount into an app's root: SOURCE on the host, TARGET in the
    app; with SUB, what lies at those parts below SOURCE (a subPath), opened
    without following symlinks by the app's own process (open_beneath)."""

    source: Path
    target: str
    read_only: bool
    sub: tuple[str, ...] = ()


# hostPath types (Kubernetes' HostPathType values) and what they demand.
_TYPE_CHECKS = {
    "Directory": (stat.S_ISDIR, "a directory"),
    "DirectoryOrCreate": (stat.S_ISDIR, "a directory"),
    "File": (stat.S_ISREG, "a regular file"),
    "FileOrCreate": (stat.S_ISREG, "a regular file"),
    "Socket": (stat.S_ISSOCK, "a socket"),
    "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device"),
}


def host_path(name: str, path: Path, kind: str) -> Path:
    where = f"volume {name}: hostPath {path}"
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(mode=0o755, parents=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.touch(mode=0o644)
    if not kind:
        if not path.exists():
            # Kubernetes leaves an untyped missing path to the runtime,
            # which creates a directory (docker's and podman's behaviour).
            path.mkdir(mode=0o755, parents=True)
        return path
    check, what = _TYPE_CHECKS[kind]
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise RuntimeSetupError(f"{where} does not exist (type {kind})") from None
    if not check(mode):
        raise RuntimeSetupError(f"{where} is not {what} (type {kind})")
    return path


def empty_dir(
    name: str, memory: bool, size: int | None, fs_group: int | None, state: Path, runtime: Path
) -> Path:
    if memory:
        path = runtime / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        options = "mode=1777" + (f",size={size}" if size is not None else "")
        sc.mount("tmpfs", path, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, options)
    else:
        path = state / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o1777)
    if fs_group is not None:
        # Like the kubelet: group-owned by fsGroup, setgid so new files are too.
        os.chown(path, 0, fs_group)
        os.chmod(path, 0o2775)
    return path


def prepare_volumes(
    specs: list[dict[str, Any]], fs_group: int | None, state: Path, runtime: Path
) -> dict[str, Path]:
    """Host paths of the pod's volumes, created or mounted as needed.

    Must run in the pod's mount namespace (memory volumes are mounted)."""
    sources: dict[str, Path] = {}
    for spec in specs:
        name = spec["name"]
        if spec["kind"] == HOST_PATH:
            sources[name] = host_path(name, Path(spec["path"]), spec["type"])
        else:
            memory = spec["kind"] == MEMORY
            sources[name] = empty_dir(name, memory, spec["size"], fs_group, state, runtime)
    return sources


def app_mounts(
    specs: list[tuple[str, str | None, str, bool]], sources: dict[str, Path]
) -> tuple[VolumeMount, ...]:
    """(volume, subPath, mountPath, readOnly) of one app, as bind mounts."""
    mounts = []
    for volume, sub_path, target, read_only in specs:
        source = sources[volume]
        sub: tuple[str, ...] = ()
        if sub_path:
            source, sub = _sub_path(source, sub_path, f"volume {volume}")
        mounts.append(VolumeMount(source, target, read_only, sub))
    return tuple(mounts)


def _sub_path(base: Path, sub: str, where: str) -> tuple[Path, tuple[str, ...]]:
    """BASE/SUB, created as a directory if missing, never outside BASE: as
    (the volume's real path, the parts below it, no symlink among them).

    A path checked by name and mounted by name later could be swapped in
    between (whoever can write in the volume can rename a symlink to / over
    it: CVE-2017-1002101, CVE-2021-30465). So symlinks inside the volume are
    resolved once, here, and checked; the app's process then opens the parts
    one at a time without following any symlink (open_beneath) and mounts
    what it opened. Missing directories are made the same way, never
    through a symlink."""
    inside = base.resolve()
    candidate = base / sub
    if candidate.exists() or candidate.is_symlink():
        resolved = candidate.resolve()
        if not resolved.is_relative_to(inside):
            raise RuntimeSetupError(f"{where}: subPath {sub!r} leads outside the volume")
        parts = resolved.relative_to(inside).parts
    else:
        parts = Path(sub).parts  # the manifest refuses ".." and absolute paths
    os.close(open_beneath(inside, parts, where, create=True))
    return inside, parts


def open_beneath(base: Path, parts: tuple[str, ...], where: str, create: bool = False) -> int:
    """An O_PATH descriptor of BASE/PARTS reached without following any
    symlink (CREATE: making missing directories with mkdirat(2) on the way).
    A bind mount of /proc/self/fd/N mounts exactly that; it must be opened in
    the mount namespace that mounts it (mount(2) refuses others')."""
    fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if part in ("", ".", ".."):
                raise RuntimeSetupError(f"{where}: {part!r} in a subPath")
            flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                step = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise RuntimeSetupError(f"{where}: subPath part {part!r} is gone") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                step = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = step
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise RuntimeSetupError(
                    f"{where}: subPath leads through a symlink ({part!r}) that is not "
                    "inside the volume, or was made one while the pod started"
                )
    except BaseException:
        os.close(fd)
        raise
    return fd
