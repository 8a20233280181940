"""The namespaces a pod's apps share: network, IPC and UTS.

The launcher creates them by unsharing in its own thread, keeps a file
descriptor to each, and returns to its original namespaces; apps join them
with setns(2). No process is needed to keep them alive, and they vanish
with the last app and the launcher's descriptors.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from types import TracebackType

from podman_sd import syscalls as sc
from podman_sd.errors import RuntimeSetupError

# <linux/sockios.h>, <net/if.h>
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


# Sysctls that belong to the namespaces a pod owns (Kubernetes' "safe" and
# namespaced sets): net.* with its network namespace, the IPC ones with its
# IPC namespace. Anything else would change the whole host.
_IPC_SYSCTLS = ("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")


Sysctl = tuple[str, str]  # (name, value)


def check_sysctl(sysctl: Sysctl, host_network: bool, host_ipc: bool) -> None:
    name = sysctl[0]
    if name.startswith("net."):
        if host_network:
            raise RuntimeSetupError(
                f"sysctl {name}: not allowed with hostNetwork (it would change the host)"
            )
        return
    if name.startswith(_IPC_SYSCTLS):
        if host_ipc:
            raise RuntimeSetupError(
                f"sysctl {name}: not allowed with hostIPC (it would change the host)"
            )
        return
    raise RuntimeSetupError(
        f"sysctl {name}: not a namespaced sysctl; it would change the whole host"
    )


def write_sysctl(sysctl: Sysctl) -> None:
    name, value = sysctl
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as err:
        raise RuntimeSetupError(f"sysctl {name}={value}: {err.strerror}") from None


def bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request + b"\0" * 22)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP) + b"\0" * 22)


# PID 1 of a pod's shared pid namespace (shareProcessNamespace), like the
# kubelet's pause container: it reaps orphans and waits to be killed with the
# pod. A bare interpreter, named so that `ps` says what it is.
PAUSE = """
import os, signal
with open("/proc/self/comm", "w") as comm:
    comm.write("podman-sd-pause")
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
signal.signal(signal.SIGCHLD, lambda *_: None)
while True:
    try:
        os.wait()
    except ChildProcessError:
        signal.pause()
"""


def start_pause(python: str) -> int:
    """Start the pod's pause process in a new pid namespace; returns its pid.

    The caller must be a child subreaper: the intermediate child exits, and
    the pause process (PID 1 of the new namespace) is re-parented to it."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            sc.unshare(sc.CLONE_NEWPID)
            pid = os.fork()
            if pid == 0:
                os.close(write_end)
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 65536)
                os.execv(python, [python, "-I", "-S", "-c", PAUSE])
            os.write(write_end, str(pid).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data = os.read(read_end, 32)
    os.close(read_end)
    os.waitpid(child, 0)
    if not data:
        raise RuntimeSetupError("the pod's pause process did not start")
    return int(data)


class PodNamespaces:
    """Context manager holding the pod's namespaces; ``fds`` to pass to apps."""

    def __init__(
        self,
        hostname: str,
        host_network: bool = False,
        host_ipc: bool = False,
        sysctls: tuple[Sysctl, ...] = (),
    ) -> None:
        for sysctl in sysctls:
            check_sysctl(sysctl, host_network, host_ipc)
        self.sysctls = sysctls
        self.hostname = hostname
        self.kinds = {"uts": sc.CLONE_NEWUTS}
        if not host_network:
            self.kinds["net"] = sc.CLONE_NEWNET
        if not host_ipc:
            self.kinds["ipc"] = sc.CLONE_NEWIPC
        self.fds: dict[str, int] = {}

    def __enter__(self) -> PodNamespaces:
        flags = 0
        for flag in self.kinds.values():
            flags |= flag
        originals = {
            kind: os.open(f"/proc/thread-self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
            for kind in self.kinds
        }
        try:
            sc.unshare(flags)
            try:
                sc.sethostname(self.hostname)
                if "net" in self.kinds:
                    bring_loopback_up()
                # /proc/sys/net and the IPC entries show the namespaces of
                # the thread that opens them: ours, right now.
                for sysctl in self.sysctls:
                    write_sysctl(sysctl)
                for kind in self.kinds:
                    self.fds[kind] = os.open(
                        f"/proc/thread-self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC
                    )
            finally:
                for kind, fd in originals.items():
                    sc.setns(fd, self.kinds[kind])
        except BaseException:
            self._close()
            raise
        finally:
            for fd in originals.values():
                os.close(fd)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
