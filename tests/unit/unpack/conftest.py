"""The unpack tests write ownership, device nodes (whiteouts) and trusted.*
extended attributes, all of which need root, as unit tests here run."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the unpack tests need root (chown, mknod, trusted.* xattrs)")
        pytest.skip("the unpack tests need root (chown, mknod, trusted.* xattrs)")
