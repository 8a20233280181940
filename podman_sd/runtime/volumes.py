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
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from podman_sd import syscalls as sc
from podman_sd.errors import RuntimeSetupError
from podman_sd.manifest.model import HostPathType, Pod, StorageMedium, Volume


@dataclass(frozen=True)
class VolumeMount:
    """One bind mount into an app's root: SOURCE on the host, TARGET in the app."""

    source: Path
    target: str
    read_only: bool


_TYPE_CHECKS = {
    HostPathType.DIRECTORY: (stat.S_ISDIR, "a directory"),
    HostPathType.DIRECTORY_OR_CREATE: (stat.S_ISDIR, "a directory"),
    HostPathType.FILE: (stat.S_ISREG, "a regular file"),
    HostPathType.FILE_OR_CREATE: (stat.S_ISREG, "a regular file"),
    HostPathType.SOCKET: (stat.S_ISSOCK, "a socket"),
    HostPathType.CHAR_DEVICE: (stat.S_ISCHR, "a character device"),
    HostPathType.BLOCK_DEVICE: (stat.S_ISBLK, "a block device"),
}


def host_path(volume: Volume) -> Path:
    assert volume.host_path is not None
    path = Path(volume.host_path.path)
    kind = volume.host_path.type
    where = f"volume {volume.name}: hostPath {path}"
    if kind is HostPathType.DIRECTORY_OR_CREATE and not path.exists():
        path.mkdir(mode=0o755, parents=True)
    elif kind is HostPathType.FILE_OR_CREATE and not path.exists():
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.touch(mode=0o644)
    if kind is HostPathType.UNSET:
        if not path.exists():
            # Kubernetes leaves an untyped missing path to the runtime,
            # which creates a directory (docker's and podman's behaviour).
            path.mkdir(mode=0o755, parents=True)
        return path
    check, what = _TYPE_CHECKS[kind]
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise RuntimeSetupError(f"{where} does not exist (type {kind.value})") from None
    if not check(mode):
        raise RuntimeSetupError(f"{where} is not {what} (type {kind.value})")
    return path


def empty_dir(volume: Volume, pod: Pod, state: Path, runtime: Path) -> Path:
    assert volume.empty_dir is not None
    fs_group = pod.spec.security_context.fs_group
    if volume.empty_dir.medium is StorageMedium.MEMORY:
        path = runtime / "volumes" / volume.name
        path.mkdir(parents=True, exist_ok=True)
        options = "mode=1777"
        if volume.empty_dir.size_limit is not None:
            options += f",size={volume.empty_dir.size_limit.ceil()}"
        sc.mount("tmpfs", path, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, options)
    else:
        path = state / "volumes" / volume.name
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o1777 if fs_group is None else 0o2775)
    if fs_group is not None:
        # Like the kubelet: group-owned by fsGroup, setgid so new files are too.
        os.chown(path, 0, fs_group)
        os.chmod(path, 0o2775)
    return path


def prepare_volumes(pod: Pod, state: Path, runtime: Path) -> dict[str, Path]:
    """Host paths of every volume of POD, created or mounted as needed.

    Must run in the pod's mount namespace (memory volumes are mounted)."""
    sources: dict[str, Path] = {}
    for volume in pod.spec.volumes:
        if volume.host_path is not None:
            sources[volume.name] = host_path(volume)
        elif volume.empty_dir is not None:
            sources[volume.name] = empty_dir(volume, pod, state, runtime)
    return sources


def app_mounts(pod: Pod, container_name: str, sources: dict[str, Path]) -> tuple[VolumeMount, ...]:
    container = next(
        c for c in (*pod.spec.init_containers, *pod.spec.containers) if c.name == container_name
    )
    mounts = []
    for mount in container.volume_mounts:
        source = sources[mount.name]
        if mount.sub_path:
            source = _sub_path(source, mount.sub_path, f"volume {mount.name}")
        mounts.append(VolumeMount(source, mount.mount_path, mount.read_only))
    return tuple(mounts)


def _sub_path(base: Path, sub: str, where: str) -> Path:
    """BASE/SUB, created as a directory if missing, never outside BASE."""
    candidate = base / sub
    if not candidate.exists() and not candidate.is_symlink():
        candidate.mkdir(parents=True, mode=0o755)
    resolved = candidate.resolve()
    if not resolved.is_relative_to(base.resolve()):
        raise RuntimeSetupError(f"{where}: subPath {sub!r} leads outside the volume")
    return resolved
