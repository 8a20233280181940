"""runtime/children.py: waiting for one child by pidfd, even after another
waitpid(-1) reaped it."""

from __future__ import annotations

import os
import signal

from podman_sd.runtime import children


def fork_exiting(code: int) -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(code)
    return pid


def test_reap_gives_the_exit_status() -> None:
    assert children.reap(children.watch(fork_exiting(3))) == 3


def test_reap_gives_the_signal_that_ended_it() -> None:
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    pidfd = children.watch(pid)
    os.kill(pid, signal.SIGKILL)
    assert children.reap(pidfd) == -signal.SIGKILL


def test_a_child_reaped_by_someone_else_is_none_at_once() -> None:
    pid = fork_exiting(0)
    pidfd = children.watch(pid)
    os.waitpid(pid, 0)  # reaped elsewhere, as supervising init containers does
    assert children.reap(pidfd) is None
