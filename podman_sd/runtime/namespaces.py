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

# <linux/sockios.h>, <net/if.h>
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request + b"\0" * 22)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP) + b"\0" * 22)


class PodNamespaces:
    """Context manager holding the pod's namespaces; ``fds`` to pass to apps."""

    def __init__(self, hostname: str, host_network: bool = False, host_ipc: bool = False) -> None:
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
