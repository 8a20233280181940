"""Test tiers (STYLE.md 7): unit tests need nothing; system tests boot a real
systemd test host and need root. Under CI=true a system test that cannot run
is a failure, never a skip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testhost import TestHost

IN_CI = os.environ.get("CI") == "true"


def require_root() -> None:
    if os.geteuid() == 0:
        return
    reason = "system tests boot a systemd test host and need root"
    if IN_CI:
        pytest.fail(f"{reason}; under CI=true they must not skip")
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("system"):
        require_root()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The check that the real host was left untouched must run last.
    last = [i for i in items if i.get_closest_marker("runs_last")]
    for item in last:
        items.remove(item)
        items.append(item)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "runs_last: ordered after every other test")


def host_snapshot() -> tuple[frozenset[str], frozenset[str]]:
    """The names in the real /tmp and the real mount table (point, type, source)."""
    tmp = frozenset(os.listdir("/tmp"))
    mounts = frozenset(
        " ".join(line.split()[:3]) for line in Path("/proc/self/mounts").read_text().splitlines()
    )
    return tmp, mounts


_SNAPSHOT_BEFORE = host_snapshot()


@pytest.fixture(scope="session")
def host_before() -> tuple[frozenset[str], frozenset[str]]:
    return _SNAPSHOT_BEFORE


@pytest.fixture(scope="module")
def installed_host() -> Iterator[TestHost]:
    """A booted test host with this checkout installed by `make install`."""
    require_root()
    with TestHost() as host:
        host.install_project()
        yield host


@pytest.fixture
def testhost() -> Iterator[TestHost]:
    """A fresh booted test host, nothing installed."""
    require_root()
    with TestHost() as host:
        yield host
