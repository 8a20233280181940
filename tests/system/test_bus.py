"""The Manager methods ``systemd/bus.py`` declares instead of introspecting
are the ones the running systemd has, argument for argument."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from podman_sd.systemd import bus
from tests.testhost import TestHost
from tests.unit.core.test_bus_introspection import signatures

pytestmark = pytest.mark.system


def test_declared_methods_match_the_running_systemd(testhost: TestHost) -> None:
    introspection = testhost.run(
        "busctl", "introspect", "--xml-interface", bus.SYSTEMD_BUS_NAME, bus.SYSTEMD_OBJECT
    ).stdout
    live = signatures(ElementTree.fromstring(introspection))
    declared = signatures(ElementTree.fromstring(bus.MANAGER_INTROSPECTION))
    assert len(declared) >= 5
    for name, arguments in declared.items():
        assert live.get(name) == arguments, name
