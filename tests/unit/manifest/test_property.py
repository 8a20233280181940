"""Thousands of mutated manifests: parse_pod returns a Pod or raises
ManifestError whose every diagnostic has a line; the generator renders every
Pod. Never another exception, never a hang."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podman_sd.errors import ManifestError
from podman_sd.generator import render_dropin
from podman_sd.manifest import parse_pod

HERE = Path(__file__).parent
SOURCES = sorted((HERE.parents[2] / "examples").glob("*.yaml")) + sorted(
    (HERE / "k8s_docs").glob("*.yaml")
)
TEXTS = [p.read_bytes() for p in SOURCES]
DOCS = [yaml.safe_load(t) for t in TEXTS]
NAMES = [p.name for p in SOURCES]

SETTINGS = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

# Values that a mutation puts anywhere: the types YAML can produce, plus
# strings that look like what belongs in a manifest.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "",
            "Always",
            "0",
            "80",
            "1Gi",
            "12 GB",
            "/abs",
            "rel",
            "a-b",
            "ALL",
            "v1",
            "Pod",
            "metadata.name",
            "emptyDir",
            "hostPath",
            "http",
            "TCP",
            "Memory",
            "None",
            "null",
        ]
    )
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=12) | st.sampled_from(["name", "image", "path"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)
KEYS = st.sampled_from(
    [
        "name",
        "image",
        "containers",
        "volumes",
        "env",
        "value",
        "valueFrom",
        "ports",
        "containerPort",
        "hostPort",
        "mountPath",
        "volumeMounts",
        "resources",
        "limits",
        "cpu",
        "memory",
        "securityContext",
        "hostPath",
        "emptyDir",
        "type",
        "path",
        "command",
        "args",
        "livenessProbe",
        "httpGet",
        "port",
        "exec",
        "restartPolicy",
        "metadata",
        "spec",
        "labels",
        "annotations",
        "initContainers",
        "nodeSelector",
        "configMap",
        "x",
    ]
) | st.text(max_size=10)


def locations(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a document."""
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((node, k))
            locations(v, out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            locations(v, out)
    return out


def mutate(doc: Any, data: st.DataObject) -> None:
    places = locations(doc, [])
    if not places:
        return
    parent, key = data.draw(st.sampled_from(places))
    action = data.draw(st.sampled_from(["replace", "delete", "add", "duplicate"]))
    if action == "replace":
        parent[key] = data.draw(VALUES)
    elif action == "delete":
        del parent[key]
    elif action == "add" and isinstance(parent, dict):
        parent[data.draw(KEYS)] = data.draw(VALUES)
    elif action == "add":
        parent.insert(key, data.draw(VALUES))
    elif isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    else:
        parent[data.draw(KEYS)] = copy.deepcopy(parent[key])


def check(text: str | bytes, name: str) -> None:
    try:
        pod = parse_pod(text, name)
    except ManifestError as e:
        diagnostics = e.diagnostics  # type: ignore[attr-defined]
        assert diagnostics, str(e)
        for d in diagnostics:
            assert d.line >= 1 and d.column >= 1, d
            assert str(d).startswith(f"{name}:{d.line}:{d.column}: ")
        assert "\n" not in str(e)
        return
    render_dropin(pod)


@SETTINGS
@given(st.data())
def test_structural_mutations(data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(DOCS) - 1))
    doc = copy.deepcopy(DOCS[i])
    for _ in range(data.draw(st.integers(1, 4))):
        mutate(doc, data)
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    check(text, NAMES[i])


@SETTINGS
@given(st.data())
def test_byte_mutations(data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(TEXTS) - 1))
    text = bytearray(TEXTS[i])
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(
            st.binary(min_size=1, max_size=4)
            | st.sampled_from(
                [
                    b":",
                    b"-",
                    b" ",
                    b"\n",
                    b"&a ",
                    b"*a",
                    b"[",
                    b"{",
                    b"'",
                    b'"',
                    b"!!",
                    b"<<: ",
                    b"\t",
                    b"#",
                    b"---\n",
                    b"\xff",
                ]
            )
        )
        if kind == "insert":
            text[pos:pos] = chunk
        elif kind == "delete":
            del text[pos : pos + len(chunk)]
        else:
            text[pos : pos + len(chunk)] = chunk
    check(bytes(text), NAMES[i])


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_input(data: bytes | str) -> None:
    check(data, "x.yaml")
