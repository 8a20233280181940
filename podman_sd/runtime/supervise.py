"""Supervising a running pod: logs, exits, restart policy, graceful stop.

One thread, one ``selectors`` loop over the apps' output pipes and a
signal wake-up socket. systemd does the restarting: when the restart policy
says the pod must restart, the launcher stops the other apps and exits with
a failure, and ``Restart=`` (written by the generator) starts the unit anew.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from podman_sd.manifest.model import RestartPolicy
from podman_sd.runtime.app import StartedApp
from podman_sd.runtime.logs import LogRelay
from podman_sd.systemd.notify import Notifier

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class Supervised:
    started: StartedApp
    relays: list[LogRelay] = field(default_factory=list)
    exit_code: int | None = None

    @property
    def name(self) -> str:
        return self.started.launch.name


def exit_code_of(status: int) -> int:
    """Shell convention: the exit status, or 128 + the killing signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class SignalWakeup:
    """Signals become bytes on a socket the select loop watches."""

    def __init__(self, signals: tuple[int, ...]) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        self.signals = signals
        signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for sig in signals:
            signal.signal(sig, lambda *_: None)

    def pending(self) -> list[int]:
        try:
            return list(self.reader.recv(4096))
        except BlockingIOError:
            return []


class Supervisor:
    def __init__(
        self,
        pod: str,
        policy: RestartPolicy,
        grace_seconds: int,
        notifier: Notifier,
        wakeup: SignalWakeup,
        on_change: Callable[[list[Supervised]], None] = lambda apps: None,
    ) -> None:
        self.pod = pod
        self.policy = policy
        self.grace = grace_seconds
        self.notifier = notifier
        self.wakeup = wakeup
        self.on_change = on_change
        self.apps: dict[int, Supervised] = {}
        self.selector = selectors.DefaultSelector()
        self.selector.register(wakeup.reader, selectors.EVENT_READ, None)
        self.stopping_since: float | None = None
        self.killed = False
        self.failed = False
        self.stop_requested = False
        self.last_exit = ""

    def add(self, app: Supervised) -> None:
        self.apps[app.started.pid] = app
        for relay in app.relays:
            self.selector.register(relay.fd, selectors.EVENT_READ, relay)

    def running(self) -> list[Supervised]:
        return [a for a in self.apps.values() if a.exit_code is None]

    def status_text(self) -> str:
        text = f"{len(self.running())}/{len(self.apps)} apps running"
        if self.stopping_since is not None:
            text = f"stopping: {text}"
        return f"{text}; last exit: {self.last_exit}" if self.last_exit else text

    # -- events --------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            app = self.apps.get(pid)
            if app is None:
                continue  # an orphan re-parented to us (we are a subreaper)
            app.exit_code = exit_code_of(status)
            self.last_exit = f"{app.name} exited {app.exit_code}"
            print(f"app {app.name} exited with status {app.exit_code}", file=sys.stderr, flush=True)
            self._after_exit(app)
            self.notifier.status(self.status_text())
            self.on_change(list(self.apps.values()))

    def _after_exit(self, app: Supervised) -> None:
        if self.stopping_since is not None:
            return
        code = app.exit_code or 0
        if code != 0:
            self.failed = True
        if self.policy is RestartPolicy.ALWAYS or (
            self.policy is RestartPolicy.ON_FAILURE and code != 0
        ):
            # The pod restarts as a whole: stop the others, let systemd restart us.
            self.failed = True
            self.begin_stop(f"app {app.name} exited {code}; restarting the pod")

    def begin_stop(self, why: str) -> None:
        if self.stopping_since is not None:
            return
        self.stopping_since = time.monotonic()
        print(f"stopping pod {self.pod}: {why}", file=sys.stderr, flush=True)
        for app in self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(app.started.pid, app.started.launch.stop_signal)
        self.notifier.status(self.status_text())

    def _kill_remaining(self) -> None:
        self.killed = True
        for app in self.running():
            print(
                f"app {app.name} did not stop within {self.grace} s; killing it",
                file=sys.stderr,
                flush=True,
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(app.started.pid, signal.SIGKILL)

    def _on_signals(self) -> None:
        for sig in self.wakeup.pending():
            if sig in STOP_SIGNALS:
                self.stop_requested = True
                self.begin_stop("stop requested")
        self._reap()

    def _relay(self, relay: LogRelay) -> None:
        try:
            more = relay.read()
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EINTR):
                return
            more = False
        if not more:
            self.selector.unregister(relay.fd)
            os.close(relay.fd)

    def _open_pipes(self) -> int:
        return len(self.selector.get_map()) - 1

    def run(self) -> int:
        """Supervise until every app has exited and its output is relayed."""
        self._reap()  # an app may have died before we started listening
        while self.running() or self._open_pipes():
            timeout = 1.0
            if self.stopping_since is not None and not self.killed:
                timeout = max(0.0, self.stopping_since + self.grace - time.monotonic())
                if timeout == 0.0 and self.running():
                    self._kill_remaining()
                    timeout = 1.0
            for key, _ in self.selector.select(timeout):
                if key.data is None:
                    self._on_signals()
                else:
                    self._relay(key.data)
            self._reap()
        if self.stop_requested:
            return 0
        return 1 if self.failed else 0
