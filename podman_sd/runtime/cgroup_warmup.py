"""Keeping cgroup migrations cheap while a pod's apps move into their scopes.

On cgroup v2 every write to a ``cgroup.procs`` file takes the kernel's
``cgroup_threadgroup_rwsem`` for writing. Its rcu_sync (kernel/rcu/sync.c)
makes the first writer after a quiet spell wait for an RCU grace period;
writers that follow within about one grace period pass at once. Measured
here: 6-8 ms on an idle machine, 10-20 ms in a busy test host, against
0.1 ms inside the window. systemd pays that wait when it moves an app into
its new scope, on the path of every ``systemctl start``.

So a start pays it early and off that path: the D-Bus worker
(``systemd/worker.py``), while it loads pydbus, runs a thread that writes
the worker's own PID into its own ``cgroup.procs`` (a move to where it
already is: nothing changes for systemd, and the unit's cgroup is not
modified), then again every few milliseconds, which keeps the window open
until the launcher lets the worker go, every app in its scope. Meanwhile
forks and exits on the host take the rwsem's slower read path, for the few
tens of milliseconds of a start; the thread gives up after a second in any
case (a start that pulls an image or runs init containers first gains
little from it). Mounting cgroup2 with ``favordynmods`` (Linux 6.0+) does
the same for the whole host, permanently; then this costs nothing and saves
nothing.

Best effort: on any error the thread just stops.
"""

from __future__ import annotations

import os
import threading
import time

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
    try:
        with open("/proc/self/cgroup") as f:
            path = next((line[3:] for line in f.read().splitlines() if line.startswith("0::")), "")
        with open("/proc/self/mounts") as f:
            mounts = [fields[1] for line in f if (fields := line.split())[2:3] == ["cgroup2"]]
    except OSError:
        return None
    pid = str(os.getpid())
    for mount in mounts if path else ():
        procs = f"{mount}{path.rstrip('/')}/cgroup.procs"
        try:
            with open(procs) as f:
                if pid in f.read().split():
                    return procs
        except OSError:
            continue
    return None


class CgroupWarmup:
    """A thread that keeps cgroup migrations in their fast window until stopped."""

    def __init__(
        self, procs: str | None = None, interval: float = INTERVAL, duration: float = DURATION
    ) -> None:
        self._procs = procs  # None: this process's own, found by the thread
        self._interval = interval
        self._duration = duration
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0

    def start(self) -> CgroupWarmup:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="cgroup-warmup", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        until = time.monotonic() + self._duration
        procs = self._procs or own_cgroup_procs()
        if procs is None:
            return
        pid = str(os.getpid()).encode()
        try:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            while not self._stop.is_set() and time.monotonic() < until:
                os.write(fd, pid)  # the GIL is released while the kernel waits
                self.writes += 1
                self._stop.wait(self._interval)
        except OSError:
            return
        finally:
            os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
