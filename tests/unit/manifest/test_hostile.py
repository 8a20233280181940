"""Malformed and hostile input: every case is a diagnostic with a line
number, never a traceback and never a hang."""

from __future__ import annotations

import time

import pytest

from podman_sd.errors import ManifestError
from podman_sd.manifest import parse_pod
from podman_sd.manifest.yamlnode import MAX_BYTES, compose

from .helpers import MINIMAL


def first_error(data: bytes | str) -> str:
    with pytest.raises(ManifestError) as info:
        parse_pod(data, "bad.yaml")
    diagnostics = info.value.diagnostics  # type: ignore[attr-defined]
    assert diagnostics
    assert all(d.line >= 1 and d.column >= 1 for d in diagnostics)
    assert "\n" not in str(info.value)
    return "\n".join(str(d) for d in diagnostics)


BOMB = b"""\
a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "bad.yaml:1:1: the manifest is empty"),
        (b"# only a comment\n", "the manifest is empty"),
        (b"\x00\x01\x02binary", "invalid YAML: control characters are not allowed"),
        (b"\xff\xfe\xfd", "invalid YAML"),
        (b"a: b: c", "bad.yaml:1:5: invalid YAML: mapping values are not allowed"),
        (b"key: [unclosed", "invalid YAML"),
        (b"- just\n- a list\n", "bad.yaml:1:1: is a list, expected a mapping"),
        (b"just a string", 'bad.yaml:1:1: "just a string" is a string, expected a mapping'),
        (b"42", "expected a mapping"),
        (b"[" * 100_000, "nested deeper than 64 levels"),
        (b"{a: " * 50_000, "nested deeper than 64 levels"),
        (b"- " * 100_000 + b"x", "nested deeper than 64 levels"),
        (BOMB, "more than 100000 values after expanding aliases"),
        (b"a: &a [*a]\n", "names no complete anchor"),
        (b"a: *nowhere\n", "names no complete anchor"),
        (b"apiVersion: v1\napiVersion: v1\n", 'bad.yaml:2:1: duplicate key "apiVersion"'),
        (b"? [a, b]\n: c\n", "a mapping key must be a string"),
        (b"a: !!binary aGVsbG8=\n", "unsupported YAML tag"),
        (b"a: !custom x\n", 'unsupported YAML tag "!custom"'),
        (b"a: 1\n---\nb: 2\n", "bad.yaml:2:1: a second YAML document"),
        (b"a: " + b"9" * 5000 + b"\n", "too long for a number"),
        (b"a: " + b"1:" * 3000 + b"1\n", "too long for a number"),
        (b"x" * (MAX_BYTES + 1), f"larger than {MAX_BYTES} bytes"),
        (b"\xef\xbb\xbf" + b"kind: [", "invalid YAML"),
    ],
)
def test_rejected_with_location(data: bytes, expected: str) -> None:
    start = time.monotonic()
    assert expected in first_error(data)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(
    "value",
    ["{}", "[]", "42", "true", "null", '"x"', "[1, [2]]", "{a: {b: {c: d}}}", "1.5", "~"],
)
@pytest.mark.parametrize(
    "path",
    [
        "spec",
        "spec.containers",
        "spec.containers.0",
        "spec.containers.0.name",
        "spec.containers.0.image",
        "spec.containers.0.env",
        "spec.containers.0.ports",
        "spec.containers.0.resources",
        "spec.containers.0.securityContext",
        "spec.volumes",
        "metadata",
        "metadata.labels",
        "spec.restartPolicy",
    ],
)
def test_wrong_types_anywhere(path: str, value: str) -> None:
    import yaml

    doc = yaml.safe_load(MINIMAL)
    node = doc
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    replacement = yaml.safe_load(value)
    if last.isdigit():
        node[int(last)] = replacement
    else:
        node[last] = replacement
    text = yaml.safe_dump(doc)
    try:
        parse_pod(text, "test.yaml")
    except ManifestError as e:
        assert all(d.line >= 1 for d in e.diagnostics)  # type: ignore[attr-defined]


def test_merge_keys_and_aliases_work() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: test}\nspec:\n"
        "  containers:\n"
        "  - &base {name: one, image: 'busybox:1.36', env: &env [{name: A, value: a}]}\n"
        "  - <<: *base\n    name: two\n    env: *env\n"
    )
    pod = parse_pod(text, "test.yaml")
    assert [c.name for c in pod.spec.containers] == ["one", "two"]
    assert pod.spec.containers[1].image == "busybox:1.36"
    assert pod.spec.containers[1].env[0].value == "a"


def test_quoted_merge_key_is_a_plain_key() -> None:
    root, found = compose(b'a: {"<<": 1}\n', "f.yaml")
    assert root is not None and not found
    assert root.plain() == {"a": {"<<": 1}}


def test_yaml_11_scalars() -> None:
    root, _ = compose(b"a: yes\nb: 0755\nc: 1_000\nd: .inf\ne: 2001-12-14\nf: ''\ng:\n", "f")
    assert root is not None
    assert root.plain() == {
        "a": True,
        "b": 0o755,
        "c": 1000,
        "d": float("inf"),
        "e": "2001-12-14",
        "f": "",
        "g": None,
    }


def test_all_errors_reported_in_file_order() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: test}\nspec:\n"
        "  containers:\n"
        "  - name: Bad_Name\n    image: busybox\n"
        "    ports: [{containerPort: 70000}]\n"
        "  restartPolicy: Sometimes\n"
    )
    with pytest.raises(ManifestError) as info:
        parse_pod(text, "test.yaml")
    found = info.value.diagnostics  # type: ignore[attr-defined]
    assert [d.line for d in found] == [6, 8, 9]
    assert str(info.value).startswith("test.yaml:6:11: spec.containers[0].name: ")
    assert str(info.value).endswith("(and 2 more errors)")
