"""Unpacked layers: each layer once, in its own directory named by chain id.

A layer is a tar archive from a stranger, and unpacking it needs root (to
restore owners, device nodes, capabilities and overlayfs whiteouts). So each
layer is unpacked in a forked child that can do as little harm as possible:
it keeps only the blob and an error pipe open, has its own mount namespace
whose root is the store's ``layers/`` directory and nothing else (pivot_root,
not chroot, so there is no way back), no network, only the capabilities
unpacking needs, and ``no_new_privs``. The unpacker's own checks refuse
every path that would leave the layer; the sandbox makes sure that even a
bug there could reach nothing but other layers.

Layers unpack in parallel, one child each. A layer whose archive leaves out
parent directories (umoci's do) must give them the metadata the layers
below show, as extracting onto the merged tree would: such a layer is
unpacked again, in order, once the layers below it are in place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from podman_sd import syscalls as sc
from podman_sd.errors import UnpackError
from podman_sd.image.store import ImageRecord, LayerRecord, Store

# What restoring a layer needs: owners, modes over other users' files, device
# nodes, file capabilities, and trusted.* xattrs (overlayfs opaque markers,
# which the kernel guards with CAP_SYS_ADMIN).
UNPACK_CAPABILITIES = frozenset(
    {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "MKNOD", "SETFCAP", "SYS_ADMIN"}
)

# What a child reports when the layer needs its lower layers after all.
NEEDS_LOWER = "needs-lower-layers"


def _enter_sandbox(root: Path, keep: tuple[int, ...]) -> None:
    from podman_sd.runtime import caps

    last = 2
    for fd in sorted(keep):
        os.closerange(last + 1, fd)
        last = fd
    os.closerange(last + 1, 65536)
    sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWNET | sc.CLONE_NEWIPC)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount(root, root, None, sc.MS_BIND)
    os.chdir(root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    caps.limit_bounding_set(UNPACK_CAPABILITIES)
    caps.apply_process_caps(UNPACK_CAPABILITIES)
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)


def _start_unpacker(
    store: Store, layer: LayerRecord, target: Path, lower: tuple[Path, ...] | None
) -> tuple[int, int]:
    """Fork a sandboxed child unpacking LAYER into TARGET; (pid, report pipe).

    With LOWER None the layer is unpacked on its own, and thrown away if it
    turns out to need the layers below (the child then reports NEEDS_LOWER)."""
    # Imported before the fork: inside the sandbox no module can be found.
    from podman_sd.unpack import unpack_layer

    blob = store.open_blob(layer.digest)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            _enter_sandbox(store.layers, (blob.fileno(), write_end))
            # Inside the sandbox, the layers directory is "/".
            inside = Path("/") / target.name
            report: dict[str, int] = {}
            unpack_layer(
                blob,
                layer.media_type,
                inside,
                expected_digest=layer.digest,
                expected_diff_id=layer.diff_id,
                lower_dirs=tuple(Path("/") / d.name for d in lower or ()),
                report=report,
            )
            if lower is None and report.get("implied_directories"):
                shutil.rmtree(inside)
                os.write(write_end, NEEDS_LOWER.encode())
            os._exit(0)
        except BaseException as err:
            text = str(err) if isinstance(err, UnpackError) else f"{type(err).__name__}: {err}"
            os.write(write_end, text.encode(errors="replace")[:4000])
            os._exit(1)
    blob.close()
    os.close(write_end)
    return pid, read_end


def _finish(pid: int, pipe: int) -> tuple[bool, str]:
    """(succeeded, what the child said)."""
    chunks = []
    while chunk := os.read(pipe, 4096):
        chunks.append(chunk)
    os.close(pipe)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    if os.waitstatus_to_exitcode(status) == 0:
        return True, text
    return False, text or f"unpacker exited with {status}"


def ensure_unpacked(store: Store, image: ImageRecord) -> tuple[Path, ...]:
    """The image's layer directories, bottom first, unpacking missing ones."""
    dirs = store.layer_dirs(image)
    if all(d.is_dir() for d in dirs):
        return dirs
    with store.layers_locked():
        missing = [i for i, target in enumerate(dirs) if not target.is_dir()]
        # First every missing layer on its own, in parallel.
        redo: list[int] = []
        errors: list[str] = []
        pending = list(missing)
        running: list[tuple[int, int, int]] = []
        width = max(1, os.cpu_count() or 1)
        while pending or running:
            while pending and len(running) < width:
                index = pending.pop(0)
                running.append(
                    (index, *_start_unpacker(store, image.layers[index], dirs[index], None))
                )
            index, pid, pipe = running.pop(0)
            ok, said = _finish(pid, pipe)
            if not ok:
                errors.append(said)
                pending.clear()  # no point in starting more
            elif said == NEEDS_LOWER:
                redo.append(index)
        if errors:
            raise UnpackError(f"image {image.reference}: {errors[0]}")
        # Then, bottom up, those that need the layers below them.
        for index in sorted(redo):
            ok, said = _finish(
                *_start_unpacker(store, image.layers[index], dirs[index], dirs[:index])
            )
            if not ok:
                raise UnpackError(f"image {image.reference}: {said}")
    return dirs
