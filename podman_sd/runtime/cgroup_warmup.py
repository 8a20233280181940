"""Keeping cgroup migrations cheap while a pod's apps move into their scopes.

On cgroup v2 every write to a ``cgroup.procs`` file takes the kernel's
``cgroup_threadgroup_rwsem`` for writing. Its rcu_sync (kernel/rcu/sync.c)
makes the first writer after a quiet spell wait for an RCU grace period;
writers that follow within about one grace period pass at once. Measured
here: 6-8 ms on an idle machine, 10-20 ms in a busy test host, against
0.1 ms inside the window. systemd pays that wait when it moves an app into
its new scope, on the path of every ``systemctl start``.

So a start pays it early and off that path: as the launcher forks its
D-Bus worker (``systemd/worker.py``), it also forks this small process,
which writes its own PID into its own ``cgroup.procs`` (a move to where it
already is: nothing changes for systemd, and the unit's cgroup is not
modified), then again every few milliseconds, which keeps the window open
until the launcher lets it go, every app in its scope. A process, not a
thread of the worker: a thread would take the worker's interpreter lock
every few milliseconds while the worker loads pydbus, on the critical path.
Meanwhile forks and exits on the host take the rwsem's slower read path,
for the few tens of milliseconds of a start; the process gives up after a
second in any case (a start that pulls an image or runs init containers
first gains little from it). Mounting cgroup2 with ``favordynmods`` (Linux
6.0+) does the same for the whole host, permanently; then this costs
nothing and saves nothing.

Best effort: on any error the process just ends.
"""

from __future__ import annotations

import contextlib
import os
import select
import time

from podman_sd.runtime import children
from podman_sd.runtime.cgroup import cgroup_dir

# Often enough that the rcu_sync never drops back to idle between writes
# (that takes at least one grace period, several milliseconds).
INTERVAL = 0.003
# A start from a cached plan places its first app well within this.
DURATION = 1.0


def own_cgroup_procs() -> str | None:
    """The cgroup.procs file of this process's cgroup v2, or None.

    Only a file that lists this process: the write must be a move to where
    it already is. (A test host sees the outer host's cgroup2 mount too,
    where the same path would be another cgroup.)"""
    directory = cgroup_dir(os.getpid())
    return None if directory is None else f"{directory}/cgroup.procs"


class CgroupWarmup:
    """A child process that keeps cgroup migrations in their fast window until stopped."""

    def __init__(
        self, procs: str | None = None, interval: float = INTERVAL, duration: float = DURATION
    ) -> None:
        self._procs = procs  # None: the process's own, found by the process
        self._interval = interval
        self._duration = duration
        self._pidfd = -1
        self._stop_fd = -1
        self.writes = 0  # how many, known once stopped (at most 255)

    def start(self) -> CgroupWarmup:
        if self._pidfd < 0:
            stop_read, self._stop_fd = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:
                writes = 0
                try:
                    os.close(self._stop_fd)
                    writes = self._run(stop_read)
                finally:
                    os._exit(min(writes, 255))
            os.close(stop_read)
            self._pidfd = children.watch(pid)
        return self

    def _run(self, stop_fd: int) -> int:
        until = time.monotonic() + self._duration
        procs = self._procs or own_cgroup_procs()
        if procs is None:
            return 0
        pid = str(os.getpid()).encode()
        writes = 0
        try:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return 0
        try:
            while time.monotonic() < until:
                os.write(fd, pid)
                writes += 1
                if select.select([stop_fd], [], [], self._interval)[0]:
                    break  # stop() wrote, or the launcher is gone
        except OSError:
            pass
        finally:
            os.close(fd)
        return writes

    def stop(self) -> None:
        if self._pidfd >= 0:
            with contextlib.suppress(BrokenPipeError):  # it gave up by itself
                os.write(self._stop_fd, b"x")
            os.close(self._stop_fd)
            # None: it gave up by itself and init containers' supervision
            # reaped it (runtime/children.py); how many writes is not known.
            self.writes = max(children.reap(self._pidfd) or 0, 0)
            self._pidfd = -1
