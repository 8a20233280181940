"""The launcher's D-Bus calls, made by a forked helper that loads pydbus in parallel.

Loading pydbus and GLib costs more time than all the rest of a pod start
together. So ``podman-sd launch`` forks this worker first thing: the worker
loads pydbus and connects to systemd while the launcher reads the pod's
plan, creates its namespaces and lets its apps build their root file
systems. The launcher then sends the few calls it needs and the worker makes
them with ``Systemd``, the one module that speaks D-Bus. The worker exits
when the launcher closes its end, once the pod is reported ready. Beside it
runs the cgroup warm-up (``runtime/cgroup_warmup.py``), which makes the
apps' moves into their scopes cheap.

Messages are marshalled tuples with a 4-byte length, over two pipes: this
module is imported before anything else in a start, so it avoids even the
socket module.
"""

from __future__ import annotations

import marshal
import os
import sys

# Not `from typing import ...`: typing costs milliseconds, and this module is
# the first thing every pod start imports (mypy treats this name as typing's).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from podman_sd.systemd.bus import ScopeSpec


def _send(fd: int, message: Any) -> None:
    data = marshal.dumps(message)
    os.write(fd, len(data).to_bytes(4, "little") + data)


def _receive(fd: int) -> Any:
    header = _read_exactly(fd, 4)
    if not header:
        return None
    return marshal.loads(_read_exactly(fd, int.from_bytes(header, "little")))


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def _serve(requests: int, replies: int) -> None:
    """In the worker: answer calls until the launcher hangs up."""
    systemd: Any = None
    failure = ""
    try:
        from podman_sd.systemd.bus import Systemd

        systemd = Systemd()
    except Exception as err:  # reported with the first call
        failure = f"cannot connect to systemd: {err}"
    _answer(requests, replies, systemd, failure)


def _answer(requests: int, replies: int, systemd: Any, failure: str) -> None:
    from podman_sd.errors import SystemdError

    while (request := _receive(requests)) is not None:
        method, args = request
        try:
            if failure:
                raise SystemdError(failure)
            if method == "start_scope":
                from podman_sd.systemd.bus import ScopeSpec

                args = (ScopeSpec(**args[0]),)
            reply = ("ok", getattr(systemd, method)(*args))
        except Exception as err:
            reply = ("error", str(err))
        _send(replies, reply)


class SystemdWorker:
    """Stands in for ``bus.Systemd`` in the launcher; the worker does the calls."""

    def __init__(self) -> None:
        their_requests, self._requests = os.pipe2(os.O_CLOEXEC)
        self._replies, their_replies = os.pipe2(os.O_CLOEXEC)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(self._requests)
                os.close(self._replies)
                _serve(their_requests, their_replies)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(their_requests)
        os.close(their_replies)
        from podman_sd.runtime import children
        from podman_sd.runtime.cgroup_warmup import CgroupWarmup

        self._pidfd = children.watch(pid)

        # The first app's move into its scope would wait for an RCU grace
        # period in the kernel; pay it now, while pydbus loads (see there).
        self._warmup = CgroupWarmup().start()

    def _call(self, method: str, *args: Any) -> Any:
        from podman_sd.errors import SystemdError

        try:
            _send(self._requests, (method, args))
            reply = _receive(self._replies)
        except (OSError, EOFError, ValueError) as err:
            raise SystemdError(f"the D-Bus worker failed during {method}: {err}") from None
        if reply is None:
            raise SystemdError(f"the D-Bus worker exited during {method}")
        status, value = reply
        if status != "ok":
            raise SystemdError(str(value))
        return value

    def start_scope(self, spec: ScopeSpec) -> str:
        fields = {
            "name": spec.name,
            "pids": tuple(spec.pids),
            "slice": spec.slice,
            "description": spec.description,
            "bound_to": spec.bound_to,
            "stop_timeout_usec": spec.stop_timeout_usec,
            "kill_signal": spec.kill_signal,
            "properties": tuple(tuple(p) for p in spec.properties),
        }
        return str(self._call("start_scope", fields))

    def set_unit_properties(self, name: str, properties: Sequence[tuple[str, str, Any]]) -> None:
        if properties:
            self._call("set_unit_properties", name, tuple(tuple(p) for p in properties))

    def unit_properties(self, name: str, properties: Sequence[str]) -> dict[str, Any]:
        return dict(self._call("unit_properties", name, tuple(properties)))

    def close(self) -> None:
        if self._pidfd >= 0:
            self._warmup.stop()
            os.close(self._requests)
            os.close(self._replies)
            from podman_sd.runtime import children

            children.reap(self._pidfd)  # reaped already if it died during init containers
            self._pidfd = -1
