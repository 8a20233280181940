"""sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.

Kept free of heavy imports because the supervising launcher calls it for
every status change.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        self._socket: socket.socket | None = None
        if address:
            # A leading '@' names a socket in the abstract namespace.
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, **fields: str | int) -> None:
        """Send e.g. ``notify(READY=1, STATUS="2/2 apps running")``."""
        if self._socket is None or self._address is None:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        self._socket.sendto(message.encode(), self._address)

    def status(self, text: str) -> None:
        self.notify(STATUS=text)
