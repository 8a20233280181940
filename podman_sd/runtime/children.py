"""Waiting for one child of the launcher, by pidfd.

The launcher is a subreaper and, while init containers run, reaps every
child that ends (``waitpid(-1)``), its helpers too. A PID reaped that way
can be reused by the next child, and ``waitpid(pid)`` would then wait for
that one instead. A pidfd names the process itself: waiting on it after
someone else reaped it says so (ECHILD) at once.
"""

from __future__ import annotations

import os


def watch(pid: int) -> int:
    """A pidfd for child PID (call before anything else can reap it)."""
    return os.pidfd_open(pid)


def reap(pidfd: int) -> int | None:
    """Wait for the child and close PIDFD: its exit status, or None if it
    was reaped already (-N if a signal N ended it)."""
    try:
        result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    except ChildProcessError:
        return None
    finally:
        os.close(pidfd)
    if result is None:  # only with WNOHANG
        return None
    return result.si_status if result.si_code == os.CLD_EXITED else -result.si_status
