"""Finding a process's cgroup v2 directory, and ending everything in one.

A machine (or a test host) can see more than one cgroup2 mount, where the
same path names different cgroups: a directory counts only when its
cgroup.procs lists the process.

Imported by the resident supervisor: nothing but os.
"""

from __future__ import annotations

import os
import signal


def cgroup_dir(pid: int) -> str | None:
    """The cgroup v2 directory PID is in, or None (gone, or no cgroup2 here)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            path = next((line[3:] for line in f.read().splitlines() if line.startswith("0::")), "")
        with open("/proc/self/mounts") as f:
            mounts = [fields[1] for line in f if (fields := line.split())[2:3] == ["cgroup2"]]
    except OSError:
        return None
    for mount in mounts if path else ():
        directory = f"{mount}{path.rstrip('/')}"
        try:
            with open(f"{directory}/cgroup.procs") as f:
                if str(pid) in f.read().split():
                    return directory
        except OSError:
            continue
    return None


def kill_all(directory: str) -> None:
    """SIGKILL every process in the cgroup DIRECTORY (and below), if it is
    still there: cgroup.kill (Linux 5.14+), else each PID it lists."""
    try:
        with open(f"{directory}/cgroup.kill", "w") as f:
            f.write("1")
        return
    except FileNotFoundError:
        if not os.path.isdir(directory):
            return  # it emptied and was removed: nothing left to end
    except OSError:
        pass
    try:
        with open(f"{directory}/cgroup.procs") as f:
            pids = [int(pid) for pid in f.read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        try:  # noqa: SIM105 (no contextlib in the resident process)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
