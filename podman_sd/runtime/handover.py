"""Replacing the launcher by a lean supervisor once the pod runs.

Starting a pod can take YAML and the manifest model (compiling its plan),
ctypes and the runtime modules; supervising needs none of them. So, once
every app runs, the launcher execs a fresh interpreter (``-I -S``: no site packages) that runs
only ``supervise.py``. Same PID, so systemd's MainPID, the notify socket
and the subreaper role (kept across execve) stay; the apps' output pipes
are inherited; the plan travels in a memfd, marshalled (the same
interpreter reads it back). Stop signals are blocked across
the exec so that none is lost between the two programs.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
from typing import Any, NoReturn

import podman_sd
from podman_sd.runtime.supervise import HANDLED_SIGNALS

_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from podman_sd.runtime.supervise import main; sys.exit(main(int(sys.argv[3])))"
)


def hand_over(plan: dict[str, Any], inherit_fds: list[int]) -> NoReturn:
    plan_fd = os.memfd_create("podman-sd-plan", 0)  # not CLOEXEC: the new program reads it
    os.write(plan_fd, marshal.dumps(plan))
    os.lseek(plan_fd, 0, os.SEEK_SET)
    for fd in inherit_fds:
        os.set_inheritable(fd, True)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(podman_sd.__file__)))
    sys.stdout.flush()
    sys.stderr.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    # argv[2], the pod name, is only there so `ps` and `systemctl status`
    # show which pod this process supervises.
    os.execv(
        sys.executable,
        [sys.executable, "-I", "-S", "-c", _BOOT, package_parent, plan["pod"], str(plan_fd)],
    )
