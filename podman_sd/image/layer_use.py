"""Which unpacked layers are in use, so that ``image prune`` keeps them.

A pod records the layers of all its apps and init containers before it
mounts any of them (``/run/podman-sd/pods/NAME/layers``), and ``image mount``
records the layers of its view (``/run/podman-sd/mounts/KEY.layers``); the
records go when the pod's runtime directory or the mount goes. A record is
written, and the layers it names checked, under a shared lock that prune
takes exclusively while it decides and deletes: so a layer prune has decided
to delete is never mounted, and a layer a start has found is never deleted,
even when an ``image rm`` came in between.

The lock is its own file, not the unpacking lock (``Store.layers_locked``):
a start from a cached plan must not wait for some other image's unpack. Lock
order, everywhere: this one, then the unpacking lock, then the store's.

On the path of every pod start: imports only what the launcher has anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from podman_sd import paths

RECORD_NAME = "layers"  # in a pod's runtime directory
MOUNT_SUFFIX = ".layers"  # beside an image mount's directory


@contextlib.contextmanager
def _locked(state_dir: Path, operation: int) -> Iterator[None]:
    # Inside root's own layers/ directory (Store.layers), as the unpacking
    # lock: the unprivileged fetch helper can neither hold nor replace it.
    path = state_dir / "layers" / "sha256" / ".use.lock"
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:  # no store yet: a first start creates it
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)


def recording(state_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Held while a pod or a mount finds its layers and records them."""
    return _locked(state_dir, fcntl.LOCK_SH)


def deciding(state_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Held by prune: no layer is found or recorded meanwhile."""
    return _locked(state_dir, fcntl.LOCK_EX)


def record(path: Path, layers: Iterable[Path]) -> None:
    """Write the names of LAYERS (their directories) to PATH, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as out:
        out.write("".join(f"{Path(layer).name}\n" for layer in layers))
    os.rename(tmp, path)


def pod_record(pod: str) -> Path:
    return paths.pod_runtime_dir(pod) / RECORD_NAME


def mount_record(mount_point: Path) -> Path:
    return mount_point.with_name(mount_point.name + MOUNT_SUFFIX)


def in_use() -> set[str]:
    """The directory names of every recorded layer (call while deciding)."""
    runtime = paths.runtime_dir()
    records = [
        *(runtime / "pods").glob(f"*/{RECORD_NAME}"),
        *(runtime / "mounts").glob(f"*{MOUNT_SUFFIX}"),
    ]
    used: set[str] = set()
    for path in records:
        with contextlib.suppress(OSError):
            used.update(line for line in path.read_text().splitlines() if line)
    return used
