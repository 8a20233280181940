"""podman-sd validate: exit codes, text and --json output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from podman_sd.manifest.validate_cmd import run_validate

from .helpers import MINIMAL

BAD = MINIMAL.replace(
    "image: busybox:1.36", "image: busybox:1.36\n    resources: {limits: {memory: 12 GB}}"
).replace("name: test", "name: bad")


@pytest.fixture(autouse=True)
def no_installed_pods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODMAN_SD_PODS_DIR", str(tmp_path / "installed"))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_file_exits_0(tmp_path: Path) -> None:
    good = write(tmp_path, "test.yaml", MINIMAL + "  nodeName: x\n")
    out = io.StringIO()
    assert run_validate([good], False, out) == 0
    assert out.getvalue().splitlines() == [
        f"{good}:9:3: warning: spec.nodeName: ignored: cluster scheduling has no meaning "
        "on a single host",
        f"{good}: valid: pod test, 1 container, 1 warning",
    ]


def test_any_error_exits_1(tmp_path: Path) -> None:
    good = write(tmp_path, "test.yaml", MINIMAL)
    bad = write(tmp_path, "bad.yaml", BAD)
    missing = tmp_path / "missing.yaml"
    out = io.StringIO()
    assert run_validate([good, bad, missing], False, out) == 1
    assert out.getvalue().splitlines() == [
        f"{good}: valid: pod test, 1 container",
        f'{bad}:9:34: spec.containers[0].resources.limits.memory: "12 GB" is not a quantity '
        "(examples: 512Mi, 2G, 500m, 1.5)",
        f"{bad}: 1 error",
        f"{missing}: cannot read: No such file or directory",
        f"{missing}: 1 error",
    ]


def test_json(tmp_path: Path) -> None:
    good = write(tmp_path, "test.yaml", MINIMAL)
    bad = write(tmp_path, "bad.yaml", BAD)
    out = io.StringIO()
    assert run_validate([good, bad], True, out) == 1
    data = json.loads(out.getvalue())
    assert data["valid"] is False
    first, second = data["files"]
    assert first == {"file": str(good), "valid": True, "pod": "test", "errors": [], "warnings": []}
    assert second["valid"] is False and second["pod"] is None
    assert second["errors"] == [
        {
            "file": str(bad),
            "line": 9,
            "column": 34,
            "path": "spec.containers[0].resources.limits.memory",
            "message": '"12 GB" is not a quantity (examples: 512Mi, 2G, 500m, 1.5)',
            "severity": "error",
        }
    ]
    out = io.StringIO()
    assert run_validate([good], True, out) == 0
    assert json.loads(out.getvalue())["valid"] is True


def test_host_checks_are_warnings(tmp_path: Path) -> None:
    text = MINIMAL + "  volumes:\n  - name: v\n    hostPath: {path: /nonexistent/x, type: File}\n"
    path = write(tmp_path, "test.yaml", text)
    out = io.StringIO()
    assert run_validate([path], False, out) == 0
    assert (
        f'{path}:11:22: warning: spec.volumes[0].hostPath.path: "/nonexistent/x" does not '
        "exist (type File needs a regular file)" in out.getvalue()
    )


def test_host_port_clash_with_installed_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "installed"
    installed.mkdir()
    # Host ports need hostNetwork (podman-sd has no bridged pod network).
    ports = "    ports: [{containerPort: 8080, hostPort: 8080}]\n  hostNetwork: true\n"
    write(installed, "other.yaml", MINIMAL.replace("name: test", "name: other") + ports)
    mine = write(tmp_path, "test.yaml", MINIMAL + ports)
    out = io.StringIO()
    assert run_validate([mine], False, out) == 0
    assert "host port 8080/TCP is also used by pod other" in out.getvalue()
    # The installed copy of the same file is no clash.
    out = io.StringIO()
    assert run_validate([installed / "other.yaml"], False, out) == 0
    assert "also used" not in out.getvalue()
