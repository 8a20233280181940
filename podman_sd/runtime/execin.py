"""``podman-sd exec`` / ``enter``: run a command inside a running app.

The new process gets exactly what the app has, never more (DESIGN.md,
"Security model"): the app's namespaces (mount, pid, net, ipc, uts,
cgroup), its scope, its user and groups, its capability sets and its
``no_new_privs``; the app's environment and working directory. Everything
is read from the app's own process (its PID 1), so a process can not get
more than the app has now; and the capabilities are also cut to those the
app was started with (its state), because the PID 1 may have moved into a
user namespace of its own, where it holds every capability: the command
runs in the pod's user namespace, where those would be real.

    exec child ── waits ── launcher attaches it to the app's scope (D-Bus)
               ── setns into the app's namespaces ── fork ──► command
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import dataclass, replace
from pathlib import Path

from podman_sd import paths
from podman_sd import syscalls as sc
from podman_sd.errors import RuntimeSetupError, SystemdError
from podman_sd.runtime import caps, seccomp  # now: inside the app, our files are out of sight
from podman_sd.systemd.scope_wait import wait_for_cgroup

# setns order: the user-visible ones first, mount last (it changes the
# root), pid affects only children.
NAMESPACES = ("ipc", "uts", "net", "cgroup", "pid", "mnt")


@dataclass(frozen=True)
class AppProcess:
    pod: str
    app: str
    pid: int
    scope: str
    seccomp: bool = False  # the app's filter (runtime/seccomp.py): exec gets it too
    # The capability bits the app was started with: never more than these.
    granted: int = caps.mask(caps.DEFAULT_CAPABILITIES)


@dataclass(frozen=True)
class Credentials:
    uid: int
    gid: int
    groups: tuple[int, ...]
    bounding: int
    effective: int
    no_new_privs: bool
    cwd: str
    env: dict[str, str]


def find_app(pod: str, app: str) -> AppProcess:
    state_file = paths.pod_state_file(pod)
    try:
        state = json.loads(state_file.read_text())
    except (FileNotFoundError, ValueError):
        raise RuntimeSetupError(f"pod {pod} is not running") from None
    for entry in state.get("apps", []):
        if entry.get("name") == app:
            if entry.get("exit_code") is not None:
                raise RuntimeSetupError(f"app {app} of pod {pod} has exited ({entry['exit_code']})")
            process = AppProcess(
                pod, app, int(entry["pid"]), str(entry["scope"]), bool(entry.get("seccomp"))
            )
            granted = entry.get("capabilities")
            if granted is None:  # a state from before it was recorded
                return process
            return replace(process, granted=caps.mask(frozenset(granted)))
    names = ", ".join(e.get("name", "?") for e in state.get("apps", []))
    raise RuntimeSetupError(f"pod {pod} has no app {app!r} (apps: {names})")


def read_credentials(pid: int) -> Credentials:
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.decode(errors="replace").split("=", 1) for item in environ if b"=" in item)
    return Credentials(
        uid=int(fields["Uid"].split()[0]),
        gid=int(fields["Gid"].split()[0]),
        groups=tuple(int(g) for g in fields.get("Groups", "").split()),
        bounding=int(fields["CapBnd"], 16),
        effective=int(fields["CapEff"], 16),
        no_new_privs=fields.get("NoNewPrivs") == "1",
        cwd=os.readlink(f"/proc/{pid}/cwd"),
        env=env,
    )


def _become(creds: Credentials, argv: list[str], filtered: bool) -> None:
    """In the forked command, inside the app's namespaces: its user, caps,
    seccomp filter (FILTERED), exec."""
    if filtered:  # while it may still (CAP_SYS_ADMIN), before any drop
        seccomp.install()
    keep = frozenset(name for name, bit in caps.CAPABILITIES.items() if creds.bounding >> bit & 1)
    caps.limit_bounding_set(keep)
    os.setgroups(list(creds.groups))
    os.setgid(creds.gid)
    if creds.uid == 0:
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
        sc.capset(creds.effective, creds.effective, creds.effective)
    os.setuid(creds.uid)
    if creds.no_new_privs:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    with contextlib.suppress(OSError):
        os.chdir(creds.cwd)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execvpe(argv[0], argv, creds.env)


def _child(target: AppProcess, creds: Credentials, argv: list[str], go: int) -> int:
    if os.read(go, 1) != b"g":
        return 1
    fds = [os.open(f"/proc/{target.pid}/ns/{kind}", os.O_RDONLY) for kind in NAMESPACES]
    for fd in fds:
        sc.setns(fd, 0)
        os.close(fd)
    pid = os.fork()
    if pid == 0:
        try:
            _become(creds, argv, target.seccomp)
        except FileNotFoundError:
            os.write(2, f"podman-sd: error: {argv[0]}: no such file in the app\n".encode())
            os._exit(127)
        except OSError as err:
            os.write(2, f"podman-sd: error: {argv[0]}: {err.strerror}\n".encode())
            os._exit(126)
        except BaseException as err:
            os.write(2, f"podman-sd: internal error: {type(err).__name__}: {err}\n".encode())
            os._exit(126)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command gets the terminal's ^C
    _, status = os.waitpid(pid, 0)
    return (
        os.waitstatus_to_exitcode(status) & 0xFF
        if not os.WIFSIGNALED(status)
        else 128 + os.WTERMSIG(status)
    )


def exec_in_app(pod: str, app: str, argv: list[str]) -> int:
    """Run ARGV in app APP of POD; returns its exit status."""
    from podman_sd.runtime.cgroup_warmup import CgroupWarmup
    from podman_sd.systemd.bus import Systemd

    target = find_app(pod, app)
    creds = read_credentials(target.pid)
    creds = replace(
        creds, bounding=creds.bounding & target.granted, effective=creds.effective & target.granted
    )
    # As at a pod start: the attach below would wait for an RCU grace
    # period in the kernel; paid while pydbus loads instead (see there).
    warmup = CgroupWarmup().start()
    try:
        systemd = Systemd()
    except BaseException:
        warmup.stop()
        raise
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        code = 1
        try:
            code = _child(target, creds, argv, go_r)
        except OSError as err:
            where = f" ({err.filename})" if err.filename else ""
            os.write(2, f"podman-sd: error: entering app {app}: {err.strerror}{where}\n".encode())
        finally:
            os._exit(code)
    os.close(go_r)
    try:
        try:
            systemd.attach_to_unit(target.scope, [pid])
        except SystemdError as err:
            if "NoSuchUnit" not in str(err):
                raise
            # The state file still names it, but the pod is stopping.
            raise RuntimeSetupError(
                f"app {app} of pod {pod} is stopping or has ended (its scope is gone)"
            ) from None
        wait_for_cgroup(pid, target.scope)
        os.write(go_w, b"g")
    finally:
        os.close(go_w)
        warmup.stop()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        signal.signal(signal.SIGINT, previous)
    return os.waitstatus_to_exitcode(status)
