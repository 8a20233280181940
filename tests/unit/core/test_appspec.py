"""Kubernetes rules for merging the image config with the manifest."""

from __future__ import annotations

import pytest

from podman_sd.errors import RuntimeSetupError
from podman_sd.image.spec import ImageConfig
from podman_sd.manifest import parse_pod
from podman_sd.runtime import appspec

CONFIG = ImageConfig(
    entrypoint=("/entry",),
    cmd=("default-arg",),
    env=("PATH=/bin", "FROM_IMAGE=1", "OVERRIDE=image"),
    working_dir="/srv",
    user="app",
    stop_signal=None,
    diff_ids=(),
    os="linux",
    architecture="amd64",
)


def pod_with(container_yaml: str, extra_spec: str = ""):  # type: ignore[no-untyped-def]
    text = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {{tier: web}}
spec:
{extra_spec}  containers:
  - name: c
    image: oci:/srv/x:latest
{container_yaml}"""
    pod = parse_pod(text, "p.yaml")
    return pod, pod.spec.containers[0]


def test_image_entrypoint_and_cmd_when_manifest_is_silent() -> None:
    pod, c = pod_with("")
    env = appspec.app_environment(pod, c, CONFIG)
    assert appspec.app_argv(c, CONFIG, env) == ("/entry", "default-arg")


def test_command_replaces_entrypoint_and_drops_cmd() -> None:
    _pod, c = pod_with("    command: [/bin/sh]\n")
    assert appspec.app_argv(c, CONFIG, {}) == ("/bin/sh",)


def test_args_replace_cmd_only() -> None:
    _pod, c = pod_with("    args: [x, y]\n")
    assert appspec.app_argv(c, CONFIG, {}) == ("/entry", "x", "y")


def test_env_merges_and_expands_in_order() -> None:
    pod, c = pod_with(
        "    env:\n"
        "    - {name: A, value: one}\n"
        "    - {name: B, value: '$(A)-two'}\n"
        "    - {name: C, value: '$$(A) $(UNDEFINED)'}\n"
        "    - {name: OVERRIDE, value: manifest}\n"
        "    - name: POD\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n"
        "    - name: TIER\n      valueFrom: {fieldRef: {fieldPath: \"metadata.labels['tier']\"}}\n"
        "    args: ['$(B)', '$$(B)']\n"
    )
    env = appspec.app_environment(pod, c, CONFIG)
    assert env["FROM_IMAGE"] == "1"
    assert env["OVERRIDE"] == "manifest"
    assert env["B"] == "one-two"
    assert env["C"] == "$(A) $(UNDEFINED)"
    assert env["POD"] == "p"
    assert env["TIER"] == "web"
    assert env["HOSTNAME"] == "p"
    assert appspec.app_argv(c, CONFIG, env) == ("/entry", "one-two", "$(B)")


def test_user_from_security_context_over_image() -> None:
    pod, c = pod_with("    securityContext: {runAsUser: 1000}\n")
    assert appspec.app_user(pod, c, CONFIG) == "1000"
    pod, c = pod_with("", extra_spec="  securityContext: {runAsUser: 5, runAsGroup: 6}\n")
    assert appspec.app_user(pod, c, CONFIG) == "5:6"
    pod, c = pod_with("")
    assert appspec.app_user(pod, c, CONFIG) == "app"


def test_nothing_to_run_is_a_clear_error() -> None:
    _pod, c = pod_with("")
    empty = ImageConfig((), (), (), "", "", None, (), "linux", "amd64")
    with pytest.raises(RuntimeSetupError, match="nothing to run"):
        appspec.app_argv(c, empty, {})
