"""``systemd/bus.py`` declares the Manager methods it calls instead of
fetching systemd's introspection data: every call it makes is declared.
(tests/system/test_bus.py compares the declarations with a running systemd.)"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

from podman_sd.systemd import bus


def signatures(node: ElementTree.Element) -> dict[str, list[tuple[str, str]]]:
    """Each method of the Manager interface: its (type, direction) arguments."""
    interface = node.find(f"interface[@name='{bus.MANAGER_INTERFACE}']")
    assert interface is not None, f"no {bus.MANAGER_INTERFACE} in the introspection data"
    return {
        method.attrib["name"]: [
            (arg.attrib["type"], arg.attrib.get("direction", "in")) for arg in method.iter("arg")
        ]
        for method in interface.iter("method")
    }


def test_every_manager_call_is_declared() -> None:
    called = set(re.findall(r"self\._manager\.(\w+)\(", Path(bus.__file__).read_text()))
    declared = signatures(ElementTree.fromstring(bus.MANAGER_INTROSPECTION))
    assert len(called) >= 5  # the pattern still finds the calls
    assert called <= set(declared), called - set(declared)
