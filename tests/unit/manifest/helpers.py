"""Small helpers shared by the manifest tests."""

from __future__ import annotations

import textwrap

from podman_sd.errors import ManifestError
from podman_sd.manifest import Diagnostic, Pod, Severity, check_pod, parse_pod

HEADER = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: test\n"
MINIMAL = HEADER + "spec:\n  containers:\n  - name: app\n    image: busybox:1.36\n"


def pod(text: str, name: str = "test.yaml") -> Pod:
    return parse_pod(textwrap.dedent(text), name)


def spec(body: str) -> Pod:
    """A pod from HEADER plus an indented ``spec:`` body."""
    return pod(HEADER + "spec:\n" + textwrap.indent(textwrap.dedent(body), "  "))


def container(body: str, extra_spec: str = "") -> Pod:
    """A pod with one container ``app`` whose fields are ``body``."""
    text = (
        "containers:\n- name: app\n  image: busybox:1.36\n"
        + textwrap.indent(textwrap.dedent(body), "  ")
        + textwrap.dedent(extra_spec)
    )
    return spec(text)


def diagnostics(text: str, name: str = "test.yaml") -> list[Diagnostic]:
    _, found = check_pod(textwrap.dedent(text), name)
    return found


def errors(text: str, name: str = "test.yaml") -> list[str]:
    """Errors as "path: message" (no location), the part most tests check."""
    try:
        parse_pod(textwrap.dedent(text), name)
    except ManifestError as e:
        found: list[Diagnostic] = e.diagnostics  # type: ignore[attr-defined]
        return [f"{d.path}: {d.message}" for d in found if d.severity is Severity.ERROR]
    return []


def spec_errors(body: str) -> list[str]:
    return errors(HEADER + "spec:\n" + textwrap.indent(textwrap.dedent(body), "  "))


def container_errors(body: str, extra_spec: str = "") -> list[str]:
    text = (
        "containers:\n- name: app\n  image: busybox:1.36\n"
        + textwrap.indent(textwrap.dedent(body), "  ")
        + textwrap.dedent(extra_spec)
    )
    return spec_errors(text)
