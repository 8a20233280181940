"""An app's root filesystem, built inside the app's own mount namespace.

Everything here runs in the forked app process after it unshared its mount
namespace, so every mount disappears with the app's last process: a crashed
launcher cannot leave a mount behind on the host. The layout follows the OCI
runtime spec's defaults (as runc and crun build them): a private /dev on
tmpfs with the standard nodes, devpts, shm and mqueue; /proc with the usual
masked and read-only paths; read-only /sys; a cgroup2 view of the app's own
scope.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from podman_sd import syscalls as sc
from podman_sd.errors import RuntimeSetupError

# /proc entries that leak host information or allow attacks: hidden.
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/proc/interrupts", "/sys/firmware", "/sys/dev/block", "/sys/devices/virtual/powercap",
)  # fmt: skip
READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)  # fmt: skip

# (name, major, minor): the OCI runtime spec's default devices.
DEVICES = (
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
    ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
)  # fmt: skip
DEV_SYMLINKS = (
    ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"),
)  # fmt: skip

NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


def make_mounts_private() -> None:
    # Our mounts must not propagate back to the host's namespace.
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)


# overlayfs stacks at most this many lower layers (OVL_MAX_STACK).
MAX_LAYERS = 500


def mount_image(layers: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
    """Stack LAYERS (bottom first) under the writable UPPER on TARGET.

    mount(2) takes at most one page of options: with layer directories named
    by their 64-digit diff ids, about 60 layers would fill it. So each layer
    gets a short symlink ("0", "1", ...) in a directory beside TARGET, and the
    option names those, relative to it: up to overlayfs' own limit of 500."""
    if not layers:
        raise OSError(0, "the image has no layers", str(target))
    if len(layers) > MAX_LAYERS:
        raise OSError(
            0, f"the image has {len(layers)} layers; overlayfs stacks at most {MAX_LAYERS}"
        )
    links = target.parent / "lower"
    shutil.rmtree(links, ignore_errors=True)
    links.mkdir()
    for index, layer in enumerate(layers):
        os.symlink(layer, links / str(index))
    # overlayfs wants the top layer first.
    lower = ":".join(str(index) for index in reversed(range(len(layers))))
    os.chdir(links)
    try:
        sc.mount(
            "overlay", target, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}"
        )
    finally:
        os.chdir("/")


def scratch_upper(scratch: Path) -> tuple[Path, Path]:
    """A small tmpfs upper layer for a root that will be made read-only.

    The root still needs a writable layer while it is being set up: mount
    points for /etc/hosts or a volume may be missing from the image. It is
    made read-only (``make_read_only``) before the app starts."""
    sc.mount("podman-sd-scratch", scratch, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=0755,size=4m")
    upper, work = scratch / "upper", scratch / "work"
    upper.mkdir()
    work.mkdir()
    return upper, work


def make_read_only(target: Path) -> None:
    # A bind remount changes only this mount point's flag; the volumes and
    # /proc, /dev mounted below it keep theirs.
    sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)


def ensure_dir(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        path.mkdir(parents=True)


def make_image_volume(root: Path, path: str) -> None:
    """The image's VOLUME at PATH, as CRI-O makes it by default
    (``image_volumes = "mkdir"``): a directory in the app's root. Where the
    image has one, it stays as the image made it (owner, mode, content);
    else it is created root's, 0755, with any missing parents. (podman
    mounts an anonymous volume there instead; a pod that needs the data to
    outlive the app says so with a volumeMount.)"""
    target = resolve_in_root(root, path)  # no existing part is a symlink now
    missing = []
    while not os.path.lexists(target):
        missing.append(target)
        target = target.parent
    if not stat.S_ISDIR(os.lstat(target).st_mode):
        inside = "/" + str(target.relative_to(root))
        raise RuntimeSetupError(f"image volume {path}: {inside} is not a directory in the image")
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        os.chmod(directory, 0o755)  # mkdir honours the umask


def _mask(root: Path, path: str) -> None:
    target = resolve_in_root(root, path)
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY | NOSUID_NODEV_NOEXEC, "size=0")
    else:
        sc.mount(resolve_in_root(root, "/dev/null"), target, None, sc.MS_BIND)


def _read_only(root: Path, path: str) -> None:
    target = resolve_in_root(root, path)
    if not target.exists():
        return
    sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC)
    sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)


def mount_proc(root: Path) -> None:
    target = resolve_in_root(root, "proc")
    ensure_dir(target)
    sc.mount("proc", target, "proc", NOSUID_NODEV_NOEXEC)


def mount_dev(root: Path) -> None:
    dev = resolve_in_root(root, "dev")
    ensure_dir(dev)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(dev / name, 0o666)  # mknod honours the umask
    for name, target in DEV_SYMLINKS:
        os.symlink(target, dev / name)
    for sub in ("pts", "shm", "mqueue"):
        (dev / sub).mkdir()
    sc.mount(
        "devpts", dev / "pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )  # fmt: skip
    sc.mount("shm", dev / "shm", "tmpfs", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k")
    sc.mount("mqueue", dev / "mqueue", "mqueue", NOSUID_NODEV_NOEXEC)


def mount_sys(root: Path) -> None:
    sys_dir = resolve_in_root(root, "sys")
    ensure_dir(sys_dir)
    sc.mount("sysfs", sys_dir, "sysfs", sc.MS_RDONLY | NOSUID_NODEV_NOEXEC)


def mount_cgroup(root: Path) -> None:
    """Read-only cgroup2 at /sys/fs/cgroup. Called after unsharing the cgroup
    namespace inside the app's scope: the mount shows that scope as its root
    and nothing of the host above it."""
    with contextlib.suppress(OSError):
        sc.mount(
            "cgroup2",
            resolve_in_root(root, "/sys/fs/cgroup"),
            "cgroup2",
            sc.MS_RDONLY | NOSUID_NODEV_NOEXEC,
        )


def protect_paths(root: Path) -> None:
    for path in MASKED_PATHS:
        _mask(root, path)
    for path in READONLY_PATHS:
        _read_only(root, path)


def resolve_in_root(root: Path, path: str) -> Path:
    """PATH inside ROOT, following symlinks as if ROOT were ``/``.

    An image (or an app writing into a shared volume) may plant a symlink
    such as ``/data -> /etc``; resolved naively, a volume mounted at
    /data would land on the host's /etc. Here no path can leave ROOT."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current = root
    followed = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            followed += 1
            if followed > 40:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            link = os.readlink(candidate)
            if link.startswith("/"):
                current = root
            parts = [p for p in link.split("/") if p not in ("", ".")] + parts
            continue
        current = candidate
    return current


def bind_mount(source: Path, root: Path, path: str, read_only: bool) -> None:
    """Bind SOURCE (a file or directory) at PATH in the new root, creating it."""
    target = resolve_in_root(root, path)
    if not target.exists():
        if source.is_dir():
            ensure_dir(target)
        else:
            ensure_dir(target.parent)
            target.touch()
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
    if read_only:
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)


def enter_root(root: Path) -> None:
    """pivot_root into ROOT and detach the old root (no directory needed)."""
    os.chdir(root)
    # pivot_root(".", ".") stacks the old root on top of the new one; the
    # lazy unmount then removes it, leaving no path back to the host.
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
