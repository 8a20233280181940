from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from podman_sd.manifest import HostPathType, Severity, host_checks

from .helpers import HEADER, pod


def hostpath_pod(path: str, kind: HostPathType) -> str:
    return HEADER + (
        "spec:\n  volumes:\n  - name: v\n"
        f"    hostPath: {{path: '{path}', type: '{kind.value}'}}\n"
        "  containers: [{name: a, image: b}]\n"
    )


@pytest.fixture
def things(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    return {
        "dir": str(tmp_path / "dir"),
        "file": str(tmp_path / "file"),
        "sock": str(tmp_path / "sock"),
        "missing": str(tmp_path / "missing"),
        "missing-parent": str(tmp_path / "none" / "file"),
        "null": os.devnull,
    }


@pytest.mark.parametrize(
    ("kind", "ok", "bad"),
    [
        (HostPathType.UNSET, ["dir", "file", "missing"], []),
        (HostPathType.DIRECTORY, ["dir"], ["file", "missing"]),
        (HostPathType.DIRECTORY_OR_CREATE, ["dir", "missing"], ["file"]),
        (HostPathType.FILE, ["file"], ["dir", "missing"]),
        (HostPathType.FILE_OR_CREATE, ["file", "missing"], ["dir", "missing-parent"]),
        (HostPathType.SOCKET, ["sock"], ["file"]),
        (HostPathType.CHAR_DEVICE, ["null"], ["file"]),
        (HostPathType.BLOCK_DEVICE, [], ["null", "dir"]),
    ],
)
def test_hostpath_types(
    things: dict[str, str], kind: HostPathType, ok: list[str], bad: list[str]
) -> None:
    for name in ok:
        assert host_checks(pod(hostpath_pod(things[name], kind))) == [], name
    for name in bad:
        (finding,) = host_checks(pod(hostpath_pod(things[name], kind)), (), Severity.ERROR)
        assert finding.severity is Severity.ERROR
        assert finding.path == "spec.volumes[0].hostPath.path"
        assert (finding.line, finding.column) == (8, 22)


def test_capacity_and_ports() -> None:
    text = HEADER + (
        "spec:\n  hostNetwork: true\n  containers:\n  - name: a\n    image: b\n"
        "    ports: [{containerPort: 53, protocol: UDP}]\n"
        "    resources: {limits: {cpu: '100000', memory: 1Ei}}\n"
    )
    p = pod(text)
    other = pod(text.replace("name: test", "name: other"), "other.yaml")
    found = host_checks(p, [other, p])
    assert [d.path for d in found] == [
        "spec.containers[0].ports[0].containerPort",
        "spec.containers[0].resources.limits.cpu",
        "spec.containers[0].resources.limits.memory",
    ]
    assert "host port 53/UDP is also used by pod other (other.yaml)" in found[0].message
    assert all(d.severity is Severity.WARNING for d in found)


def test_local_image_missing() -> None:
    p = pod(HEADER + "spec:\n  containers: [{name: a, image: 'oci:/nonexistent/layout:1'}]\n")
    (finding,) = host_checks(p)
    assert finding.path == "spec.containers[0].image"
