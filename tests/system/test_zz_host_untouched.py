"""After the whole suite the real host's /tmp and mount table are as before."""

from __future__ import annotations

import pytest

from tests.conftest import host_snapshot


@pytest.mark.runs_last
def test_real_host_untouched(host_before: tuple[frozenset[str], frozenset[str]]) -> None:
    tmp_before, mounts_before = host_before
    tmp_after, mounts_after = host_snapshot()
    assert sorted(tmp_after - tmp_before) == [], "new entries in the real /tmp"
    assert sorted(tmp_before - tmp_after) == [], "entries removed from the real /tmp"
    assert sorted(mounts_after ^ mounts_before) == [], "the real mount table changed"
