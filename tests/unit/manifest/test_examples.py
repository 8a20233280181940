"""Every example validates with podman-sd and against the Kubernetes Pod v1
schema (kubernetes-validate ships the official schemas; nothing is fetched)."""

from __future__ import annotations

import io
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from podman_sd.manifest import load_pod
from podman_sd.manifest.validate_cmd import run_validate

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
DOCS = sorted((Path(__file__).parent / "k8s_docs").glob("*.yaml"))
# The oldest and newest Kubernetes versions whose schemas the package ships.
VERSIONS = ["1.25.0", kubernetes_validate.utils.latest_version()]


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    pod = load_pod(path)
    assert pod.name == path.stem
    assert pod.warnings == ()


def test_examples_pass_validate_command() -> None:
    out = io.StringIO()
    assert run_validate(EXAMPLES, False, out) == 0, out.getvalue()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", EXAMPLES + DOCS, ids=lambda p: p.name)
def test_valid_kubernetes_pod(path: Path, version: str) -> None:
    data = yaml.safe_load(path.read_text())
    kubernetes_validate.validate(data, version, strict=True)
