"""The supervisor relays what an app wrote last before it logs the app's exit."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from podman_sd.runtime import supervise
from podman_sd.runtime.logs import LogRelay
from podman_sd.runtime.supervise import SupervisedApp, Supervisor
from podman_sd.systemd.notify import Notifier


class Recorder:
    """The journal and the supervisor's own log, in the order things came."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def send(self, message: bytes, fields: bytes) -> None:
        self.events.append(message.decode())

    def send_line(self, fields: bytes, line: bytes) -> None:
        self.events.append(line.decode())

    def log(self, text: str) -> None:
        self.events.append(text)


class QuietWakeup:
    """A wake-up socket without signal handlers (pytest keeps its own)."""

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)

    def pending(self) -> list[int]:
        return []


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(supervise, "log", recorder.log)
    return recorder


def exited_app(recorder: Recorder, body: Callable[[], None]) -> SupervisedApp:
    """An app "a" that ran BODY with its stdout and stderr on pipes, and has
    exited (a zombie not reaped yet) by the time this returns."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            body()
        finally:
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, still there to reap
    relays = [LogRelay(recorder, fd, {"CONTAINER_NAME": "a"}) for fd in (out_r, err_r)]  # type: ignore[arg-type]
    return SupervisedApp("a", pid, signal.SIGTERM, relays)


def supervisor_of(app: SupervisedApp) -> Supervisor:
    supervisor = Supervisor("p", "Never", 1, Notifier(""), QuietWakeup())  # type: ignore[arg-type]
    supervisor.add(app)
    return supervisor


def test_an_apps_last_lines_come_before_its_exit_line(recorder: Recorder) -> None:
    def body() -> None:
        os.write(1, b"line1\n")
        os.write(2, b"line2\n")

    app = exited_app(recorder, body)
    assert supervisor_of(app).run() == 1
    assert recorder.events == ["line1", "line2", "app a exited with status 3"]


def test_a_line_without_a_newline_is_relayed_before_the_exit_line(recorder: Recorder) -> None:
    def body() -> None:
        os.write(1, b"one\nlast words")

    app = exited_app(recorder, body)
    supervisor_of(app).run()
    assert recorder.events == ["one", "last words", "app a exited with status 3"]


@pytest.fixture
def grandchild() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:  # re-parented when the app exited: not ours to wait for
        os.kill(pid, signal.SIGKILL)


def test_a_child_of_the_app_holding_its_pipe_does_not_hold_up_the_exit_line(
    recorder: Recorder, grandchild: list[int]
) -> None:
    """The app's child keeps stdout open: the supervisor relays what is
    there, logs the exit at once, and keeps reading the pipe afterwards."""
    read_pid, write_pid = os.pipe()

    def body() -> None:
        child = os.fork()
        if child == 0:
            time.sleep(60)  # holds stdout and stderr open
            os._exit(0)
        os.write(write_pid, child.to_bytes(4, "little"))
        os.write(1, b"bye\n")

    app = exited_app(recorder, body)
    grandchild.append(int.from_bytes(os.read(read_pid, 4), "little"))
    os.close(read_pid)
    os.close(write_pid)
    supervisor = supervisor_of(app)
    started = time.monotonic()
    supervisor.reap()
    assert time.monotonic() - started < 1
    assert recorder.events == ["bye", "app a exited with status 3"]
    assert supervisor._open_pipes() == 2  # still relayed until the child closes them
    # The pipes are not waited on any more, but still read.
    supervisor._relay(app.relays[0])
    assert supervisor._open_pipes() == 2
    for relay in app.relays:
        supervisor.selector.unregister(relay.fd)
        os.close(relay.fd)


def test_own_lines_go_to_the_journal_when_stderr_is_the_journal(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Through the socket the apps' lines go through, in one order, not
    through the stream journald reads in an order of its own."""
    sent: list[tuple[bytes, bytes]] = []

    class FakeJournal:
        def send(self, message: bytes, fields: bytes) -> None:
            sent.append((message, fields))

    monkeypatch.setattr(supervise, "JournalWriter", FakeJournal)
    stat = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
    supervise._OwnLines().write("app a exited with status 3")
    assert sent == [(b"app a exited with status 3", b"SYSLOG_IDENTIFIER=podman-sd\nPRIORITY=6\n")]
    assert capfd.readouterr().err == ""
    # Elsewhere (a terminal, a test), stderr.
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    supervise._OwnLines().write("on stderr")
    assert capfd.readouterr().err == "on stderr\n"
    assert len(sent) == 1


# -- STATUS=: the exit that decided the pod's fate comes first ---------------


def waiting_app(name: str, code: int) -> tuple[SupervisedApp, int]:
    """An app NAME that exits with CODE once its go fd is closed."""
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # Only its own go fd: not the other apps' (they would never see EOF).
        os.closerange(3, go_r)
        os.closerange(go_r + 1, 65536)
        os.read(go_r, 1)
        os._exit(code)
    os.close(go_r)
    return SupervisedApp(name, pid, signal.SIGTERM), go_w


def run_in_turn(policy: str, exits: list[tuple[str, int]]) -> Supervisor:
    """Apps exit one after the other, each seen by the supervisor in turn."""
    supervisor = Supervisor("p", policy, 1, Notifier(""), QuietWakeup())  # type: ignore[arg-type]
    started = [waiting_app(name, code) for name, code in exits]
    for app, _ in started:
        supervisor.add(app)
    for app, go in started:
        os.close(go)
        if app.exit_code is None:  # not stopped by the supervisor already
            os.waitid(os.P_PID, app.pid, os.WEXITED | os.WNOWAIT)
            supervisor.reap()
    return supervisor


def test_status_names_the_exit_that_failed_the_pod(recorder: Recorder) -> None:
    supervisor = run_in_turn("Never", [("a", 4), ("b", 5), ("c", 0)])
    text = supervisor.status_text()
    assert text == "0/3 apps running; failed: a exited 4; last exit: c exited 0"
    assert supervisor.failed


def test_one_failing_exit_is_named_once(recorder: Recorder) -> None:
    assert (
        run_in_turn("Never", [("app", 7)]).status_text() == "0/1 apps running; failed: app exited 7"
    )


def test_a_pod_that_ended_well_shows_its_last_exit(recorder: Recorder) -> None:
    supervisor = run_in_turn("Never", [("a", 0), ("b", 0)])
    assert supervisor.status_text() == "0/2 apps running; last exit: b exited 0"
    assert not supervisor.failed


def test_a_restart_names_the_exit_that_caused_it(recorder: Recorder) -> None:
    supervisor = run_in_turn("Always", [("a", 0), ("b", 143)])
    assert supervisor.status_text() == (
        "stopping: 0/2 apps running; restarts: a exited 0; last exit: b exited 143"
    )
    supervisor = run_in_turn("OnFailure", [("a", 2), ("b", 143)])
    assert supervisor.status_text() == (
        "stopping: 0/2 apps running; failed: a exited 2; last exit: b exited 143"
    )


def test_past_the_grace_period_with_only_pipes_left_it_waits_and_does_not_spin() -> None:
    """A stop whose apps have all exited, with a pipe still open (held by
    something the app left): the loop must block on it, not poll with 0."""
    supervisor = Supervisor("p", "Never", 1, Notifier(""), QuietWakeup())  # type: ignore[arg-type]
    supervisor.stopping_since = time.monotonic() - 5  # the grace period (1 s) is over
    assert supervisor.running() == []
    assert supervisor._timeout() >= 1.0
