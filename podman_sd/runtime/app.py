"""Starting one app: fork, place it in its scope, build its world, exec.

The sequence (DESIGN.md, step 5) is:

    launcher ── fork ──► child          waits on the "go" pipe
    launcher: StartTransientUnit(scope, PIDs=[child]); wait until moved; "go"
    child: join the pod's net/ipc/uts namespaces; unshare mount, pid, cgroup
    child ── fork ──► app               PID 1 of the new pid namespace
    child: reports the app's pid and exits (the launcher, a subreaper,
           inherits the app)
    app: overlay rootfs, /proc, /dev, /sys, pivot_root, user, capabilities,
         no_new_privs, exec

Because the child is in the scope before it forks, the app and everything it
starts are in the scope too. Errors before exec travel back on the status
pipe (closed by exec on success) so the launcher can report them in one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from podman_sd import syscalls as sc
from podman_sd.errors import RuntimeSetupError
from podman_sd.runtime import caps, rootfs
from podman_sd.runtime.users import resolve_user
from podman_sd.runtime.volumes import VolumeMount


@dataclass(frozen=True)
class AppLaunch:
    """Everything needed to start one app, fully resolved."""

    pod: str
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str
    user: str  # "uid[:gid]" or names, resolved against the image's /etc/passwd
    supplementary_groups: tuple[int, ...]
    capabilities: frozenset[str]
    no_new_privileges: bool
    layers: tuple[Path, ...]  # bottom first
    upper: Path | None  # None: read-only root file system
    work: Path | None
    mountpoint: Path  # where the root is built; its parent also holds "scratch"
    mounts: tuple[VolumeMount, ...] = ()  # volumes and the pod's /etc files
    run_as_non_root: bool = False
    namespace_fds: tuple[int, ...] = ()  # pod namespaces to join (setns)
    stop_signal: int = int(signal.SIGTERM)
    image: str = ""


@dataclass
class StartedApp:
    launch: AppLaunch
    pid: int
    stdout: int
    stderr: int
    started_at: float


def _report(fd: int, text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, text.encode(errors="replace")[:4000])


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError):
        where = f" {err.filename}" if err.filename else ""
        return f"{err.strerror or err}{':' if where else ''}{where}"
    return str(err)


def _close_other_fds(keep: int) -> None:
    # The app must not inherit the launcher's D-Bus, journal or pipe fds.
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)


def _become_app(launch: AppLaunch, status_w: int) -> None:
    """In the app process (PID 1 of its namespace): set up and exec."""
    root = launch.mountpoint
    rootfs.make_mounts_private()
    upper, work = launch.upper, launch.work
    if upper is None or work is None:
        upper, work = rootfs.scratch_upper(root.parent / "scratch")
    rootfs.mount_image(launch.layers, upper, work, root)
    rootfs.mount_proc(root)
    rootfs.mount_dev(root)
    rootfs.mount_sys(root)
    rootfs.protect_paths(root)
    for mount in launch.mounts:
        rootfs.bind_mount(mount.source, root, mount.target, mount.read_only)
    # Like runc, create a missing working directory (before the root may
    # become read-only).
    rootfs.ensure_dir(rootfs.resolve_in_root(root, launch.working_dir or "/"))
    if launch.upper is None:
        rootfs.make_read_only(root)
    rootfs.enter_root(root)
    uid, gid, groups = resolve_user(launch.user, Path("/"))
    if launch.run_as_non_root and uid == 0:
        raise RuntimeSetupError(
            f"runAsNonRoot is set but the app would run as root (user {launch.user!r})"
        )
    os.chdir(launch.working_dir or "/")
    caps.limit_bounding_set(launch.capabilities)
    os.setgroups(sorted({*groups, *launch.supplementary_groups}))
    os.setgid(gid)
    if uid == 0:
        caps.apply_process_caps(launch.capabilities)
    # For a non-root uid, setuid(2) clears the effective and permitted sets.
    os.setuid(uid)
    if launch.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    for sig in range(1, signal.NSIG):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    _close_other_fds(status_w)
    program = launch.argv[0]
    try:
        os.execvpe(program, list(launch.argv), dict(launch.env))
    except FileNotFoundError:
        raise RuntimeSetupError(
            f"{program}: no such file in the image (PATH={launch.env.get('PATH', '')})"
        ) from None
    except PermissionError:
        raise RuntimeSetupError(f"{program}: permission denied") from None


def _child(launch: AppLaunch, go_r: int, status_w: int, stdout_w: int, stderr_w: int) -> None:
    """In the forked child: wait for the scope, enter namespaces, fork the app."""
    if os.read(go_r, 1) != b"g":
        os._exit(1)  # the launcher gave up (scope creation failed)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    for fd in launch.namespace_fds:
        sc.setns(fd, 0)
    sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWCGROUP)
    pid = os.fork()
    if pid:
        _report(status_w, f"pid {pid}\n")
        os._exit(0)
    try:
        _become_app(launch, status_w)
    except BaseException as err:
        _report(status_w, f"error {_describe(err)}\n")
    os._exit(127)


def spawn(launch: AppLaunch, place_in_scope: Callable[[int], None]) -> StartedApp:
    """Start LAUNCH; PLACE_IN_SCOPE(pid) must move pid into the app's scope."""
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
    stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            _child(launch, go_r, status_w, stdout_w, stderr_w)
        except BaseException as err:
            _report(status_w, f"error {_describe(err)}\n")
        os._exit(127)
    for fd in (go_r, status_w, stdout_w, stderr_w):
        os.close(fd)
    try:
        try:
            place_in_scope(pid)
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        os.write(go_w, b"g")
        os.close(go_w)
        go_w = -1
        report = _read_all(status_r).decode(errors="replace")
    finally:
        if go_w >= 0:
            os.close(go_w)
        os.close(status_r)
        os.waitpid(pid, 0)
    app_pid = 0
    for line in report.splitlines():
        kind, _, value = line.partition(" ")
        if kind == "pid":
            app_pid = int(value)
        elif kind == "error":
            os.close(stdout_r)
            os.close(stderr_r)
            if app_pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(app_pid, 0)
            raise RuntimeSetupError(f"app {launch.name}: {value}")
    if not app_pid:
        raise RuntimeSetupError(f"app {launch.name}: the app process did not start")
    return StartedApp(launch, app_pid, stdout_r, stderr_r, time.monotonic())


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)
