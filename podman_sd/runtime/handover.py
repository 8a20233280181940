"""Replacing the launcher by a lean supervisor once the pod runs.

Starting a pod can take YAML and the manifest model (compiling its plan),
ctypes and the runtime modules; supervising needs none of them. So, once
every app runs, the launcher execs a fresh interpreter (``-I -S``: no site packages) that runs
only ``supervise.py``. Same PID, so systemd's MainPID, the notify socket
and the subreaper role (kept across execve) stay; the apps' output pipes
are inherited; the plan travels in a memfd, marshalled (the same
interpreter reads it back). Stop signals are blocked across
the exec so that none is lost between the two programs; one that came
before they were blocked, while the apps started, is in the launcher's
wake-up socket, which the exec closes: the plan carries it over.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
from typing import Any, NoReturn

import podman_sd
from podman_sd.runtime.supervise import HANDLED_SIGNALS, STOP_SIGNALS, SignalWakeup

_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from podman_sd.runtime.supervise import main; sys.exit(main(int(sys.argv[3])))"
)


def hand_over(plan: dict[str, Any], inherit_fds: list[int], wakeup: SignalWakeup) -> NoReturn:
    # From now on signals wait for the supervisor; those that came before are
    # read from the wake-up socket now.
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    if any(sig in STOP_SIGNALS for sig in wakeup.pending()):
        plan = {**plan, "stop_requested": True}
    plan_fd = os.memfd_create("podman-sd-plan", 0)  # not CLOEXEC: the new program reads it
    os.write(plan_fd, marshal.dumps(plan))
    os.lseek(plan_fd, 0, os.SEEK_SET)
    for fd in inherit_fds:
        os.set_inheritable(fd, True)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(podman_sd.__file__)))
    sys.stdout.flush()
    sys.stderr.flush()
    # argv[2], the pod name, is only there so `ps` and `systemctl status`
    # show which pod this process supervises.
    os.execv(
        sys.executable,
        [sys.executable, "-I", "-S", "-c", _BOOT, package_parent, plan["pod"], str(plan_fd)],
    )
