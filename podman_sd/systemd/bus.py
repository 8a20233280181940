"""systemd's manager API over D-Bus, through pydbus.

The only module that talks D-Bus. Names are written once, the bus is
injected (tests can pass another), and D-Bus errors become SystemdError via
one table. Properties of transient units are passed as (name, Variant)
pairs exactly as org.freedesktop.systemd1(5) documents them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from podman_sd.errors import SystemdError

SYSTEMD_BUS_NAME = "org.freedesktop.systemd1"
SYSTEMD_OBJECT = "/org/freedesktop/systemd1"
MANAGER_INTERFACE = "org.freedesktop.systemd1.Manager"
UNIT_INTERFACE = "org.freedesktop.systemd1.Unit"

# The methods of the Manager this module calls, as systemd 252's
# introspection data gives them (org.freedesktop.systemd1(5); a system test
# compares them with the running systemd's). pydbus's ``bus.get()`` would
# fetch and parse all of it, some 200 members, on every connection: about
# 3 ms of every pod start. The proxy is built from this instead.
MANAGER_INTROSPECTION = f"""<node><interface name="{MANAGER_INTERFACE}">
<method name="StartTransientUnit"><arg type="s" name="name" direction="in"/>
 <arg type="s" name="mode" direction="in"/><arg type="a(sv)" name="properties" direction="in"/>
 <arg type="a(sa(sv))" name="aux" direction="in"/><arg type="o" name="job" direction="out"/></method>
<method name="ResetFailedUnit"><arg type="s" name="name" direction="in"/></method>
<method name="SetUnitProperties"><arg type="s" name="name" direction="in"/>
 <arg type="b" name="runtime" direction="in"/>
 <arg type="a(sv)" name="properties" direction="in"/></method>
<method name="StopUnit"><arg type="s" name="name" direction="in"/>
 <arg type="s" name="mode" direction="in"/><arg type="o" name="job" direction="out"/></method>
<method name="LoadUnit"><arg type="s" name="name" direction="in"/>
 <arg type="o" name="unit" direction="out"/></method>
<method name="AttachProcessesToUnit"><arg type="s" name="unit_name" direction="in"/>
 <arg type="s" name="subcgroup" direction="in"/><arg type="au" name="pids" direction="in"/></method>
</interface></node>"""

# D-Bus error names mapped to a hint for the one-line message.
_ERROR_HINTS = {
    "org.freedesktop.systemd1.UnitExists": "a unit of that name exists already (a stale app?)",
    "org.freedesktop.systemd1.NoSuchUnit": "no such unit",
    "org.freedesktop.DBus.Error.AccessDenied": "access denied (run as root)",
    "org.freedesktop.DBus.Error.InvalidArgs": "systemd rejected a property",
}


def _describe(err: Exception) -> str:
    text = str(err)
    for name, hint in _ERROR_HINTS.items():
        if name in text:
            return f"{hint}: {text.split(':', 1)[-1].strip()}"
    return text


class ScopeSpec(NamedTuple):  # not a dataclass: see runtime.volumes.VolumeMount
    """A transient scope for one app, created around an existing process."""

    name: str
    pids: tuple[int, ...]
    slice: str
    description: str
    bound_to: str  # the pod service: stop or death of it stops the scope
    stop_timeout_usec: int
    kill_signal: int
    properties: tuple[tuple[str, str, Any], ...] = ()  # extra (name, D-Bus signature, value)


def _manager_proxy(bus: Any) -> Any:
    """What ``bus.get(SYSTEMD_BUS_NAME, SYSTEMD_OBJECT)`` returns, without asking."""
    from xml.etree import ElementTree

    from pydbus.proxy import CompositeInterface

    node = ElementTree.fromstring(MANAGER_INTROSPECTION)
    return CompositeInterface(node)(bus, SYSTEMD_BUS_NAME, SYSTEMD_OBJECT)


class Systemd:
    def __init__(self, bus: Any = None) -> None:
        if bus is None:
            from pydbus import SystemBus  # deferred: gi is slow to import

            bus = SystemBus()
        self._bus = bus
        self._manager = _manager_proxy(bus)

    @staticmethod
    def _variant(signature: str, value: Any) -> Any:
        from gi.repository import GLib

        return GLib.Variant(signature, value)

    def start_scope(self, spec: ScopeSpec) -> str:
        """Create the scope; returns the job path. Raises SystemdError."""
        v = self._variant
        properties: list[tuple[str, Any]] = [
            ("Description", v("s", spec.description)),
            ("PIDs", v("au", list(spec.pids))),
            ("Slice", v("s", spec.slice)),
            ("BindsTo", v("as", [spec.bound_to])),
            ("PartOf", v("as", [spec.bound_to])),
            # Ordered before the service, so on `systemctl stop` the launcher
            # stops the apps gracefully first; only if the launcher is gone
            # does systemd kill the scope itself.
            ("Before", v("as", [spec.bound_to])),
            ("CollectMode", v("s", "inactive-or-failed")),
            # Delegated, as podman's and docker's container scopes are: it is
            # what lets `podman-sd exec` attach a process to the running
            # scope (AttachProcessesToUnit refuses other units).
            ("Delegate", v("b", True)),
            ("TimeoutStopUSec", v("t", spec.stop_timeout_usec)),
            ("KillSignal", v("i", spec.kill_signal)),
            *((name, v(sig, value)) for name, sig, value in spec.properties),
        ]
        try:
            try:
                return str(self._manager.StartTransientUnit(spec.name, "fail", properties, []))
            except Exception as err:  # GLib.Error: pydbus raises it untyped
                # A failed scope of that name, left by an earlier run, is
                # still loaded: reset it and try once more. (Not done up
                # front: one D-Bus round trip less on every start.)
                if "UnitExists" not in str(err):
                    raise
                self.reset_failed(spec.name)
                return str(self._manager.StartTransientUnit(spec.name, "fail", properties, []))
        except Exception as err:
            raise SystemdError(f"cannot create scope {spec.name}: {_describe(err)}") from None

    def set_unit_properties(self, name: str, properties: Sequence[tuple[str, str, Any]]) -> None:
        """Set properties at runtime (they are gone after a reboot)."""
        if not properties:
            return
        props = [(prop, self._variant(sig, value)) for prop, sig, value in properties]
        try:
            self._manager.SetUnitProperties(name, True, props)
        except Exception as err:
            raise SystemdError(f"cannot set properties of {name}: {_describe(err)}") from None

    def stop_unit(self, name: str) -> None:
        try:
            self._manager.StopUnit(name, "replace")
        except Exception as err:
            raise SystemdError(f"cannot stop {name}: {_describe(err)}") from None

    def unit_properties(self, name: str, properties: Sequence[str]) -> dict[str, Any]:
        try:
            path = self._manager.LoadUnit(name)
            unit = self._bus.get(SYSTEMD_BUS_NAME, path)
            return {prop: getattr(unit, prop) for prop in properties}
        except Exception as err:
            raise SystemdError(f"cannot read {name}: {_describe(err)}") from None

    def attach_to_unit(self, name: str, pids: Sequence[int]) -> None:
        """Move PIDS into the running unit NAME (a scope), as `podman-sd exec` does."""
        try:
            self._manager.AttachProcessesToUnit(name, "", list(pids))
        except Exception as err:
            raise SystemdError(f"cannot attach to {name}: {_describe(err)}") from None

    def reset_failed(self, name: str) -> None:
        try:
            self._manager.ResetFailedUnit(name)
        except Exception as err:
            if "NoSuchUnit" not in str(err) and "not loaded" not in str(err):
                raise SystemdError(f"cannot reset {name}: {_describe(err)}") from None
