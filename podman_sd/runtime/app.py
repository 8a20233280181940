"""Starting one app: fork, place it in its scope, build its world, exec.

The sequence (DESIGN.md, step 5) is:

    launcher ── fork ──► child          joins the pod's net/ipc/uts namespaces,
                                        unshares mount and pid
    child ── fork ──► app               PID 1 of the new pid namespace
    child: reports the app's pid and exits (the launcher, a subreaper,
           inherits the app)
    app: overlay rootfs, /proc, /dev, /sys, volumes, pivot_root; "prepared";
         then waits on the "go" pipe
    launcher: StartTransientUnit(scope, PIDs=[app]); wait until moved; "go"
    app: unshare the cgroup namespace (rooted at its scope now), user,
         capabilities, no_new_privs, exec

The app builds its world while the launcher is still busy (loading the D-Bus
library, creating other apps), but it runs nothing of the image before it is
in its scope, so everything it starts is in the scope too. Errors before
exec travel back on the status pipe (closed by exec on success) so the
launcher can report them in one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from podman_sd import syscalls as sc
from podman_sd.errors import RuntimeSetupError
from podman_sd.runtime import caps, rootfs, seccomp, volumes
from podman_sd.runtime.users import home_of, resolve_user
from podman_sd.runtime.volumes import VolumeMount


class AppLaunch(NamedTuple):  # not a dataclass: see volumes.VolumeMount
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
    # Its own pid namespace, unless hostPID or shareProcessNamespace (then
    # namespace_fds holds the pod's shared one, or the host's is kept).
    own_pid_namespace: bool = True
    stop_signal: int = int(signal.SIGTERM)
    image: str = ""
    image_digest: str = ""  # the manifest digest of the image it starts
    # The image's Volumes that no volumeMount covers: made as directories.
    image_volumes: tuple[str, ...] = ()
    seccomp: bool = True  # runtime/seccomp.py; not for privileged apps


class StartedApp(NamedTuple):
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


def _build_world(launch: AppLaunch) -> tuple[int, int, tuple[int, ...], str]:
    """In the app process (PID 1 of its namespaces), before it is in its scope:
    the root file system, /proc, /dev, /sys, volumes, pivot_root, the user."""
    root = launch.mountpoint
    rootfs.make_mounts_private()
    upper, work = launch.upper, launch.work
    if upper is None or work is None:
        upper, work = rootfs.scratch_upper(root.parent / "scratch")
    rootfs.mount_image(launch.layers, upper, work, root)
    # In the image's own tree, before anything is mounted on it: nothing
    # made here can land in a volume or in /proc, /dev, /sys.
    for path in launch.image_volumes:
        rootfs.make_image_volume(root, path)
    rootfs.mount_proc(root)
    rootfs.mount_dev(root)
    rootfs.mount_sys(root)
    rootfs.protect_paths(root)
    for mount in launch.mounts:
        if not mount.sub:
            rootfs.bind_mount(mount.source, root, mount.target, mount.read_only)
            continue
        # A subPath: opened here, in this mount namespace, without following
        # symlinks, and mounted as opened (volumes.open_beneath).
        where = f"volume mount {mount.target}"
        fd = volumes.open_beneath(mount.source, mount.sub, where)
        try:
            rootfs.bind_mount(Path(f"/proc/self/fd/{fd}"), root, mount.target, mount.read_only)
        finally:
            os.close(fd)
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
    return uid, gid, groups, home_of(uid, Path("/"))


def _become_app(launch: AppLaunch, go_r: int, status_w: int) -> None:
    uid, gid, groups, home = _build_world(launch)
    _report(status_w, "prepared\n")
    # Nothing runs before the launcher has put us into our scope.
    if os.read(go_r, 1) != b"g":
        os._exit(1)  # the launcher gave up (its scope request failed)
    os.close(go_r)
    # Now rooted at the scope: the app sees only its own cgroup.
    sc.unshare(sc.CLONE_NEWCGROUP)
    rootfs.mount_cgroup(Path("/"))
    if launch.seccomp:  # while it may still (CAP_SYS_ADMIN), before any drop
        seccomp.install()
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
    # As runc, podman and the CRI runtimes: HOME from the image's passwd
    # entry of the user, unless the image or the manifest set it.
    env = {"HOME": home, **launch.env}
    try:
        os.execvpe(program, list(launch.argv), env)
    except FileNotFoundError:
        raise RuntimeSetupError(
            f"{program}: no such file in the image (PATH={launch.env.get('PATH', '')})"
        ) from None
    except PermissionError:
        raise RuntimeSetupError(f"{program}: permission denied") from None


def _child(launch: AppLaunch, go_r: int, status_w: int, stdout_w: int, stderr_w: int) -> None:
    """In the forked child: enter the pod's namespaces, fork the app."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    for fd in launch.namespace_fds:
        sc.setns(fd, 0)
    sc.unshare(sc.CLONE_NEWNS | (sc.CLONE_NEWPID if launch.own_pid_namespace else 0))
    pid = os.fork()
    if pid:
        _report(status_w, f"pid {pid}\n")
        os._exit(0)
    try:
        _become_app(launch, go_r, status_w)
    except BaseException as err:
        _report(status_w, f"error {_describe(err)}\n")
    os._exit(127)


class PendingApp(NamedTuple):
    """An app whose world is being built; it waits for its scope to exec."""

    launch: AppLaunch
    pid: int
    go: int
    status: int
    stdout: int
    stderr: int
    # The app's "prepared" (or "error ...") line, if it came before the pid.
    early: str = ""

    def abandon(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        for fd in (self.go, self.status, self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                os.close(fd)


def _read_line(fd: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def prepare(launch: AppLaunch) -> PendingApp:
    """Fork the app; it builds its root while the launcher talks to systemd."""
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
    stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)  # so that the launcher's death reads as end of file
            os.close(status_r)
            _child(launch, go_r, status_w, stdout_w, stderr_w)
        except BaseException as err:
            _report(status_w, f"error {_describe(err)}\n")
        os._exit(127)
    for fd in (go_r, status_w, stdout_w, stderr_w):
        os.close(fd)
    # The child's "pid N" and the app's first line race each other.
    early = ""
    line = _read_line(status_r)
    if line and not line.startswith("pid "):
        early, line = line, _read_line(status_r)
    os.waitpid(pid, 0)  # the intermediate child exits at once
    kind, _, value = line.partition(" ")
    if kind != "pid":
        for fd in (go_w, status_r, stdout_r, stderr_r):
            os.close(fd)
        why = (early or line).partition(" ")[2]
        raise RuntimeSetupError(f"app {launch.name}: {why or 'the app process did not start'}")
    return PendingApp(launch, int(value), go_w, status_r, stdout_r, stderr_r, early)


def release(pending: PendingApp, place_in_scope: Callable[[int], None]) -> StartedApp:
    """Put the prepared app into its scope (PLACE_IN_SCOPE(pid)), then let it exec."""
    launch = pending.launch
    prepared = pending.early or _read_line(pending.status)
    if prepared != "prepared":
        pending.abandon()
        raise RuntimeSetupError(f"app {launch.name}: {prepared.partition(' ')[2] or 'it died'}")
    try:
        place_in_scope(pending.pid)
    except BaseException:
        pending.abandon()
        raise
    os.write(pending.go, b"g")
    os.close(pending.go)
    # End of file: exec succeeded (the pipe is close-on-exec); else one line.
    report = _read_all(pending.status).decode(errors="replace").strip()
    os.close(pending.status)
    if report:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pending.pid, 0)
        os.close(pending.stdout)
        os.close(pending.stderr)
        raise RuntimeSetupError(f"app {launch.name}: {report.partition(' ')[2]}")
    return StartedApp(launch, pending.pid, pending.stdout, pending.stderr, time.monotonic())


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)
