"""The sandbox layers are unpacked in: it sees only the layers directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from podman_sd.image import layers
from podman_sd.runtime import caps
from tests.unit.core.forked import output_of_child


def run_in_sandbox(root: Path) -> dict[str, str]:
    def body(write_end: int) -> bytes:
        try:
            layers._enter_sandbox(root, (write_end,))
            report = {
                "listing": ",".join(sorted(os.listdir("/"))),
                "etc_passwd": str(os.path.exists("/etc/passwd")),
                "proc": str(os.path.exists("/proc/self/status")),
            }
            try:
                os.chroot("/tmp-escape")
                report["chroot"] = "allowed"
            except OSError as err:
                report["chroot"] = err.strerror or ""
            return json.dumps(report).encode()
        except BaseException as err:
            return json.dumps({"error": str(err)}).encode()

    result: dict[str, str] = json.loads(output_of_child(body))
    return result


@pytest.mark.system  # needs root: namespaces and pivot_root
def test_sandbox_sees_only_its_root(tmp_path: Path) -> None:
    (tmp_path / "layer-a").mkdir()
    (tmp_path / "tmp-escape").mkdir()
    report = run_in_sandbox(tmp_path)
    assert "error" not in report, report
    assert report["listing"] == "layer-a,tmp-escape"
    assert report["etc_passwd"] == "False"
    # No /proc inside, and CAP_SYS_CHROOT is gone: no chroot trick out.
    assert report["proc"] == "False"
    assert report["chroot"] == "Operation not permitted"


def test_unpack_capabilities_are_a_small_set() -> None:
    assert "SYS_CHROOT" not in layers.UNPACK_CAPABILITIES
    assert "NET_ADMIN" not in layers.UNPACK_CAPABILITIES
    assert layers.UNPACK_CAPABILITIES.issubset(caps.CAPABILITIES)
