"""Floors of a pod start, for reading ``bench.start``'s ratio.

Two Type=notify services measured with ``systemctl start`` next to the pod:

- ``python-notify``: /usr/bin/python3 -I -S sends READY=1. The least any
  Python launcher started by systemd can cost.
- ``pydbus-scope``: python3 forks a child, loads pydbus, creates one
  transient scope for the child with StartTransientUnit, waits until the
  child is in it, sends READY=1. The least a Python launcher that puts an
  app into its scope with pydbus (as issue 7 asks) can cost, with nothing
  else of a pod (no namespaces, root file system, logs or supervisor).
- ``busctl-scope``: the same in python3 -I -S, with the D-Bus call made by
  systemd's ``busctl`` instead of pydbus: what a start could cost if the
  start path did not load pydbus (issue 7 asks for pydbus).
"""

from __future__ import annotations

from podman_sd.systemd.bus import MANAGER_INTROSPECTION
from tests.testhost import TestHost

PYTHON_NOTIFY = r"""
import os, signal, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"READY=1")
signal.pause()
"""

# The app: a forked child that waits; the scripts below put it into a scope.
FORK_APP = r"""
import os, signal, socket, subprocess, time
child = os.fork()
if child == 0:
    signal.pause()
"""

# Once the child is in its scope: READY=1, then stay until it ends.
READY_WHEN_MOVED = r"""
while "/floor-app.scope\n" not in open(f"/proc/{child}/cgroup").read():
    time.sleep(0.0005)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"READY=1")
os.waitpid(child, 0)
"""

PYDBUS_SCOPE = (
    FORK_APP
    + r"""
import sys
sys.path.append("/usr/lib/python3/dist-packages")  # -S: no site module, as the launcher
from xml.etree import ElementTree
from gi.repository import GLib
from pydbus import SystemBus
from pydbus.proxy import CompositeInterface
# As systemd/bus.py does: its declared methods, not introspected.
manager = CompositeInterface(ElementTree.fromstring(MANAGER_INTROSPECTION))(
    SystemBus(), "org.freedesktop.systemd1", "/org/freedesktop/systemd1"
)
manager.StartTransientUnit("floor-app.scope", "fail", [
    ("PIDs", GLib.Variant("au", [child])),
    ("Slice", GLib.Variant("s", "floor.slice")),
    ("BindsTo", GLib.Variant("as", ["floor-pydbus-scope.service"])),
], [])
""".replace("MANAGER_INTROSPECTION", repr(MANAGER_INTROSPECTION))
    + READY_WHEN_MOVED
)

BUSCTL_SCOPE = (
    FORK_APP
    + r"""
subprocess.run([
    "busctl", "call", "--quiet", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
    "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))",
    "floor-app.scope", "fail", "3", "PIDs", "au", "1", str(child), "Slice", "s", "floor.slice",
    "BindsTo", "as", "1", "floor-busctl-scope.service", "0",
], check=True)
"""
    + READY_WHEN_MOVED
)

UNIT = """\
[Unit]
StartLimitIntervalSec=0

[Service]
Type=notify
NotifyAccess=all
ExecStart=/usr/bin/python3 {flags} /srv/floors/{name}.py
"""

FLOORS = {
    "python-notify": ("-I -S", PYTHON_NOTIFY),
    "pydbus-scope": ("-I -S", PYDBUS_SCOPE),
    "busctl-scope": ("-I -S", BUSCTL_SCOPE),
}


def install_floors(host: TestHost) -> dict[str, tuple[list[str], list[str]]]:
    """Install the floor services; returns (start, stop) commands per floor."""
    commands = {}
    for name, (flags, script) in FLOORS.items():
        host.write_file(f"/srv/floors/{name}.py", script)
        host.write_file(
            f"/etc/systemd/system/floor-{name}.service", UNIT.format(flags=flags, name=name)
        )
        unit = f"floor-{name}.service"
        commands[name] = (["systemctl", "start", unit], ["systemctl", "stop", unit])
    host.run("systemctl", "daemon-reload")
    return commands
