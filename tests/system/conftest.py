"""What most system test modules start from; a module that needs more
defines its own ``host`` fixture, which takes precedence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout


@pytest.fixture(scope="module")
def host(installed_host: TestHost) -> Iterator[TestHost]:
    """The installed test host with a busybox image in oci:/srv/images, trusted."""
    build_busybox_layout(installed_host)
    accept_unsigned(installed_host, "oci:/srv/images")
    yield installed_host
