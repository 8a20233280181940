"""Supervising a running pod: logs, exits, restart policy, graceful stop.

One thread, one ``selectors`` loop over the apps' output pipes and a
signal wake-up socket. systemd does the restarting: when the restart policy
says the pod must restart, the launcher stops the other apps and exits with
a failure, and ``Restart=`` (written by the generator) starts the unit anew.

This module is what stays resident for the life of a pod, so it imports
only light standard modules: the launcher sets the pod up, then execs a
fresh interpreter running ``main`` here (see ``handover.py``), which keeps
the resident memory of a pod near the bare interpreter's.
"""

from __future__ import annotations

import errno
import marshal
import os
import selectors
import signal
import socket
import sys
import time

from podman_sd.exitcodes import EXIT_DEADLINE
from podman_sd.runtime import probes
from podman_sd.runtime.cgroup import kill_all
from podman_sd.runtime.logs import LogRelay, relays_for, tail_message
from podman_sd.systemd.journal import PRIORITY_INFO, JournalWriter, encode_fields
from podman_sd.systemd.notify import Notifier
from podman_sd.tinyjson import dumps

# Not `from typing import TYPE_CHECKING`: typing pulls in re, and this
# module must stay light (mypy treats this name the same way).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# `systemctl kill -s HUP pod@NAME` reaches only this process (each app is in
# a scope of its own): these are passed on to every running app, as `podman
# kill -s` would, instead of ending the supervisor and with it the pod.
FORWARDED_SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT, signal.SIGWINCH)
HANDLED_SIGNALS = (*STOP_SIGNALS, *FORWARDED_SIGNALS, signal.SIGCHLD)


class SupervisedApp:
    # A plain class, not a dataclass: this module must not pull in
    # dataclasses (and with it inspect, re, ...) in the resident process.
    __slots__ = ("exit_code", "info", "name", "pid", "relays", "stop_signal")

    def __init__(
        self,
        name: str,
        pid: int,
        stop_signal: int,
        relays: list[LogRelay] | None = None,
        info: dict[str, Any] | None = None,  # scope, image, ids: for `status`
    ) -> None:
        self.name = name
        self.pid = pid
        self.stop_signal = stop_signal
        self.relays = relays or []
        self.exit_code: int | None = None
        self.info = info or {}


def exit_code_of(status: int) -> int:
    """Shell convention: the exit status, or 128 + the killing signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class SignalWakeup:
    """Signals become bytes on a socket the select loop watches."""

    def __init__(self, signals: tuple[int, ...] = HANDLED_SIGNALS) -> None:
        self._signals = signals
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in signals:
            signal.signal(sig, lambda *_: None)
        # Signals blocked across the exec from the launcher arrive now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)

    def close(self) -> None:
        """Back to default signal handling (the launcher failed; it exits)."""
        signal.set_wakeup_fd(-1)
        for sig in self._signals:
            signal.signal(sig, signal.SIG_DFL)

    def pending(self) -> list[int]:
        try:
            return list(self.reader.recv(4096))
        except BlockingIOError:
            return []


def _kill(pid: int, sig: int) -> None:
    # Not contextlib.suppress: contextlib is one more import in the resident process.
    try:  # noqa: SIM105
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _stderr_is_journal() -> bool:
    """Whether stderr is pod@NAME.service's journal stream: systemd says so in
    $JOURNAL_STREAM, "DEVICE:INODE" of that stream (systemd.exec(5))."""
    try:
        device, inode = os.environ["JOURNAL_STREAM"].split(":")
        stat = os.fstat(2)
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (KeyError, ValueError, OSError):
        return False


class _OwnLines:
    """Where the supervisor's own lines go. Into the journal over the native
    protocol, as the apps' lines go, when stderr is the journal anyway:
    journald reads its stream sockets and its datagram socket in no fixed
    order, so an "app X exited" line on stderr could land among the last
    lines of X, sent before it. Datagrams keep the order they were sent in."""

    # SyslogIdentifier= of pod@.service and PRIORITY=6 (info): what
    # journald gives a line written to stderr.
    FIELDS = encode_fields({"SYSLOG_IDENTIFIER": "podman-sd", "PRIORITY": PRIORITY_INFO})

    def __init__(self) -> None:
        self.journal: JournalWriter | None = None
        self.checked = False

    def write(self, text: str) -> None:
        if not self.checked:
            self.checked = True
            if _stderr_is_journal():
                try:  # noqa: SIM105 (no contextlib in the resident process)
                    self.journal = JournalWriter()
                except OSError:
                    pass
        if self.journal is not None:
            try:
                self.journal.send(text.encode(errors="replace"), self.FIELDS)
                return
            except OSError:
                self.journal = None  # journald went away: stderr still works
        print(text, file=sys.stderr, flush=True)


_own_lines = _OwnLines()


def log(text: str) -> None:
    _own_lines.write(text)


class Supervisor:
    def __init__(
        self,
        pod: str,
        policy: str,  # restartPolicy: "Always", "OnFailure" or "Never"
        grace_seconds: int,
        notifier: Notifier,
        wakeup: SignalWakeup,
        on_change: Callable[[list[SupervisedApp]], None] = lambda apps: None,
        deadline: float | None = None,  # time.monotonic() at which the pod must end
    ) -> None:
        self.pod = pod
        self.policy = policy
        self.grace = grace_seconds
        self.notifier = notifier
        self.wakeup = wakeup
        self.on_change = on_change
        self.deadline = deadline
        self.apps: dict[int, SupervisedApp] = {}
        self.selector = selectors.DefaultSelector()
        self.selector.register(wakeup.reader, selectors.EVENT_READ, None)
        self.stopping_since: float | None = None
        self.killed = False
        self.failed = False
        self.deadline_exceeded = False
        self.stop_requested = False
        self.ended = False  # every app exited and its output is relayed
        self.last_exit = ""
        # What decided the pod's fate ("failed: a exited 4"): STATUS= names it
        # first, so that a later exit with 0 cannot make a failed pod look fine.
        self.cause = ""
        self.cause_exit = ""  # the exit in it, as last_exit says it
        self.probes: list[probes.Probe] = []
        self.probe_pids: dict[int, probes.Probe] = {}
        # Sent by the launcher unless readiness probes or postStart hooks
        # must pass first.
        self.ready_sent = True
        self.hooks: dict[str, dict[str, list[str]]] = {}  # app -> {"postStart": cmd, ...}
        self.hook_pids: dict[int, tuple[str, str]] = {}  # pid -> (app, hook)
        self.post_start_pending: set[str] = set()
        self.pre_stop_waiting: dict[str, int] = {}  # app -> its stop signal, sent after preStop

    def add_hooks(self, app: SupervisedApp, hooks: dict[str, list[str]]) -> None:
        """Lifecycle hooks, run with `podman-sd exec` like exec probes. postStart
        runs now and must succeed before the pod counts as ready (the app is
        killed if it fails, as the kubelet does); preStop runs before the app's
        stop signal, within the grace period."""
        self.hooks[app.name] = hooks
        if "postStart" in hooks:
            pid = probes.run_in_app(app.info["exec_argv"], hooks["postStart"])
            self.hook_pids[pid] = (app.name, "postStart")
            self.post_start_pending.add(app.name)
            self.ready_sent = False

    def _hook_finished(self, app_name: str, hook: str, code: int) -> None:
        app = self._app_named(app_name)
        if hook == "postStart":
            self.post_start_pending.discard(app_name)
            if code != 0 and app is not None and app.exit_code is None:
                log(f"postStart hook of app {app_name} failed with status {code}; killing the app")
                _kill(app.pid, signal.SIGKILL)
            self._maybe_ready()
        else:
            if code != 0:
                log(f"preStop hook of app {app_name} failed with status {code}")
            sig = self.pre_stop_waiting.pop(app_name, None)
            if sig is not None and app is not None and app.exit_code is None:
                _kill(app.pid, sig)

    def _maybe_ready(self) -> None:
        ready, total = self._ready_apps()
        if not self.ready_sent and ready == total and not self.post_start_pending:
            self.ready_sent = True
            self.notifier.notify(READY=1, STATUS=self.status_text())
        else:
            self.notifier.status(self.status_text())

    def add_probes(self, app: str, specs: dict[str, Any], started: float) -> None:
        for kind in (probes.STARTUP, probes.LIVENESS, probes.READINESS):
            if kind in specs:
                self.probes.append(probes.Probe(app, kind, specs[kind], started))
        if probes.READINESS in specs:
            self.ready_sent = False

    def _app_named(self, name: str) -> SupervisedApp | None:
        return next((a for a in self.apps.values() if a.name == name), None)

    def _ready_apps(self) -> tuple[int, int]:
        """(ready, total): an app without a readiness probe counts as ready."""
        waiting = {p.app for p in self.probes if p.kind == probes.READINESS and not p.passed}
        running = [a for a in self.running() if a.name not in waiting]
        return len(running), len(self.apps)

    def _run_probes(self, now: float) -> None:
        if self.stopping_since is not None:
            return
        started_ok = {p.app for p in self.probes if p.kind == probes.STARTUP and p.passed}
        gated = {p.app for p in self.probes if p.kind == probes.STARTUP}
        for probe in self.probes:
            if probe.pid:
                if now > probe.deadline:
                    _kill(probe.pid, signal.SIGKILL)  # too slow: counts as a failure
                continue
            if probe.due > now:
                continue
            if probe.kind != probes.STARTUP and probe.app in gated - started_ok:
                continue  # the startup probe has not passed yet
            if probe.kind == probes.STARTUP and probe.passed:
                continue  # a startup probe is done once it passed
            app = self._app_named(probe.app)
            if app is None or app.exit_code is not None:
                continue
            self.probe_pids[probe.start(app.pid, app.info["exec_argv"])] = probe

    def _probe_finished(self, probe: probes.Probe, ok: bool) -> None:
        verdict = probe.finished(ok, time.monotonic())
        if verdict is None:
            return
        what = f"{probe.kind} probe of app {probe.app}"
        if verdict == "failed":
            log(f"{what} failed {probe.failures} times")
            if probe.kind in (probes.STARTUP, probes.LIVENESS):
                self.failed = True
                self._decide(f"failed: {what} failed")
                self.begin_stop(f"{what} failed; the pod restarts")
        else:
            log(f"{what} passed")
        if probe.kind == probes.READINESS:
            self._maybe_ready()

    def _next_probe_event(self, now: float) -> float:
        times = [p.deadline if p.pid else p.due for p in self.probes]
        return max(0.0, min(times) - now) if times else 60.0

    def add(self, app: SupervisedApp) -> None:
        self.apps[app.pid] = app
        for relay in app.relays:
            self.selector.register(relay.fd, selectors.EVENT_READ, relay)

    def running(self) -> list[SupervisedApp]:
        return [a for a in self.apps.values() if a.exit_code is None]

    def status_text(self) -> str:
        text = f"{len(self.running())}/{len(self.apps)} apps running"
        if any(p.kind == probes.READINESS for p in self.probes):
            ready, total = self._ready_apps()
            text += f", {ready}/{total} ready"
        if self.stopping_since is not None and not self.ended:
            text = f"stopping: {text}"
        if self.cause:
            text = f"{text}; {self.cause}"
        if self.last_exit and self.last_exit != self.cause_exit:
            text = f"{text}; last exit: {self.last_exit}"
        return text

    def _decide(self, cause: str, exit_text: str = "") -> None:
        """The first cause of the pod's end (or restart) is the one that counts:
        the exits that follow are those of apps stopped because of it."""
        if not self.cause:
            self.cause, self.cause_exit = cause, exit_text

    # -- events --------------------------------------------------------------

    def reap(self) -> None:
        changed = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            hook = self.hook_pids.pop(pid, None)
            if hook is not None:
                self._hook_finished(*hook, exit_code_of(status))
                continue
            probe = self.probe_pids.pop(pid, None)
            if probe is not None:
                self._probe_finished(probe, os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
                continue
            app = self.apps.get(pid)
            if app is None:
                continue  # an orphan re-parented to us (we are a subreaper)
            app.exit_code = exit_code_of(status)
            # What the app wrote last is in its pipes now: into the journal
            # before the line that says it exited.
            self._drain(app)
            # The app ends with its main process, as a container does: what
            # it left behind goes too (runc does the same). In a PID namespace
            # of its own the kernel has done it; with shareProcessNamespace or
            # hostPID a child could hold its pipes, and the pod, forever.
            if app.info.get("cgroup"):  # its scope's directory (the launcher found it)
                kill_all(app.info["cgroup"])
            self.last_exit = f"{app.name} exited {app.exit_code}"
            log(f"app {app.name} exited with status {app.exit_code}")
            self._read_termination_message(app)
            self._after_exit(app)
            changed = True
        if changed:
            self.notifier.status(self.status_text())
            self.on_change(list(self.apps.values()))

    def _read_termination_message(self, app: SupervisedApp) -> None:
        path = app.info.get("termination_log")
        if not path:
            return
        try:
            with open(path, "rb") as file:
                # Kubernetes keeps at most 4096 bytes of it.
                message = file.read(4096).decode(errors="replace").strip()
        except OSError:
            return
        tail = app.relays[0].tail if app.relays else None
        if not message and app.exit_code and app.info.get("message_from_logs") and tail:
            message = tail_message(tail)  # FallbackToLogsOnError
        if message:
            app.info["termination_message"] = message
            log(f"app {app.name} termination message: {message}")

    def _after_exit(self, app: SupervisedApp) -> None:
        if self.stopping_since is not None:
            return
        code = app.exit_code or 0
        if code != 0:
            self.failed = True
            self._decide(f"failed: {self.last_exit}", self.last_exit)
        if self.policy == "Always" or (self.policy == "OnFailure" and code != 0):
            # The pod restarts as a whole: stop the others, let systemd restart us.
            self.failed = True
            self._decide(f"restarts: {self.last_exit}", self.last_exit)
            self.begin_stop(f"app {app.name} exited {code}; the pod restarts")

    def begin_stop(self, why: str) -> None:
        if self.stopping_since is not None:
            return
        self.stopping_since = time.monotonic()
        log(f"stopping pod {self.pod}: {why}")
        for probe_pid in self.probe_pids:
            _kill(probe_pid, signal.SIGKILL)
        for app in self.running():
            pre_stop = self.hooks.get(app.name, {}).get("preStop")
            if pre_stop:
                pid = probes.run_in_app(app.info["exec_argv"], pre_stop)
                self.hook_pids[pid] = (app.name, "preStop")
                self.pre_stop_waiting[app.name] = app.stop_signal
            else:
                _kill(app.pid, app.stop_signal)
        self.notifier.status(self.status_text())

    def _kill_remaining(self) -> None:
        self.killed = True
        for app in self.running():
            log(f"app {app.name} did not stop within {self.grace} s; killing it")
            _kill(app.pid, signal.SIGKILL)

    def _on_signals(self) -> None:
        for sig in self.wakeup.pending():
            if sig in STOP_SIGNALS:
                self.request_stop()
            elif sig in FORWARDED_SIGNALS:
                for app in self.running():
                    log(f"passing {signal.Signals(sig).name} on to app {app.name}")
                    _kill(app.pid, sig)

    def request_stop(self) -> None:
        """`systemctl stop`: stop every app, then end with success."""
        self.stop_requested = True
        self.begin_stop("stop requested")

    def _relay(self, relay: LogRelay) -> None:
        try:
            more = relay.read()
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EINTR):
                return
            log(f"log relay of fd {relay.fd} failed: {err}")
            more = False
        if not more:
            self.selector.unregister(relay.fd)
            os.close(relay.fd)

    def _drain(self, app: SupervisedApp) -> None:
        registered = self.selector.get_map()
        for relay in app.relays:
            key = registered.get(relay.fd)
            if key is None or key.data is not relay:
                continue  # closed at end of file already
            try:
                more = relay.drain()
            except OSError as err:
                log(f"log relay of fd {relay.fd} failed: {err}")
                more = False
            if not more:
                self.selector.unregister(relay.fd)
                os.close(relay.fd)

    def _open_pipes(self) -> int:
        return len(self.selector.get_map()) - 1

    def _timeout(self) -> float:
        now = time.monotonic()
        if self.stopping_since is not None:
            if self.killed:
                return 1.0
            left = self.stopping_since + self.grace - now
            if left <= 0 and self.running():
                self._kill_remaining()
                return 1.0
            # Past the grace period with no app left, only pipes to read to
            # their end: wait for them, do not spin.
            return left if left > 0 else 1.0
        self._run_probes(now)
        timeout = min(60.0, self._next_probe_event(now))
        if self.deadline is not None:
            if now >= self.deadline:
                self.deadline_exceeded = True
                self._decide("failed: activeDeadlineSeconds exceeded")
                self.begin_stop("activeDeadlineSeconds exceeded")
                return 0.0
            timeout = min(timeout, self.deadline - now)
        return timeout

    def run(self) -> int:
        """Supervise until every app has exited and its output is relayed."""
        self.reap()  # an app may have died before we started listening
        while self.running() or self._open_pipes():
            for key, _ in self.selector.select(self._timeout()):
                if key.data is None:
                    self._on_signals()
                else:
                    self._relay(key.data)
            self.reap()
        # What stays in `systemctl status` (and `podman-sd status`) after
        # the unit ended: how it ended, not "stopping: ...".
        self.ended = True
        self.notifier.status(self.status_text())
        if self.deadline_exceeded:
            return EXIT_DEADLINE
        if self.stop_requested:
            return 0
        return 1 if self.failed else 0


# -- the resident process after the hand-over --------------------------------


def write_state(path: str, pod: str, apps: list[SupervisedApp], status: str = "") -> None:
    state = {
        "pod": pod,
        "launcher_pid": os.getpid(),
        "status": status,  # STATUS=, also for `status` once the pod ended
        "apps": [{"name": a.name, "pid": a.pid, "exit_code": a.exit_code, **a.info} for a in apps],
    }
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as out:
            out.write(dumps(state))
        os.rename(tmp, path)
    except OSError:
        pass  # status is informational; supervision goes on


def supervise_plan(plan: dict[str, Any]) -> int:
    """Run the supervision loop from the plan the launcher handed over."""
    wakeup = SignalWakeup()
    notifier = Notifier()
    writer = JournalWriter()
    deadline = plan.get("deadline_in")
    state_path = plan["state_path"]
    supervisor = Supervisor(
        plan["pod"],
        plan["policy"],
        plan["grace"],
        notifier,
        wakeup,
        on_change=lambda apps: write_state(state_path, plan["pod"], apps, supervisor.status_text()),
        deadline=None if deadline is None else time.monotonic() + deadline,
    )
    now = time.monotonic()
    for app in plan["apps"]:
        supervised = SupervisedApp(
            name=app["name"],
            pid=app["pid"],
            stop_signal=app["stop_signal"],
            relays=relays_for(writer, app["streams"], bool(app["info"].get("message_from_logs"))),
            info=app["info"],
        )
        supervisor.add(supervised)
        supervisor.add_probes(app["name"], app.get("probes") or {}, now)
    # State first: the hooks run `podman-sd exec`, which finds the app there.
    write_state(state_path, plan["pod"], list(supervisor.apps.values()), supervisor.status_text())
    for app, supervised in zip(plan["apps"], supervisor.apps.values(), strict=True):
        if app.get("hooks"):
            supervisor.add_hooks(supervised, app["hooks"])
    # READY=1 was sent by the launcher before the hand-over, unless
    # readiness probes must pass first: then the supervisor sends it.
    notifier.status(supervisor.status_text())
    if plan.get("stop_requested"):  # it came just before the hand-over
        supervisor.request_stop()
    return supervisor.run()


def main(plan_fd: int) -> int:
    # Show as "podman-sd" in ps and the journal's _COMM, not "python3".
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write("podman-sd")
    except OSError:
        pass
    with os.fdopen(plan_fd, "rb") as plan_file:
        plan = marshal.load(plan_file)  # builtin, unlike json (which pulls in re)
    return supervise_plan(plan)
