"""What an app runs: the image config merged with the manifest, by Kubernetes rules.

- ``command`` replaces the image's Entrypoint (and then its Cmd is not used);
  ``args`` replaces the image's Cmd. An empty list is not given, as the
  kubelet's runtimes (containerd, CRI-O) and ``podman play kube`` read it.
- ``env`` is added to the image's Env, later entries winning; ``$(VAR)``
  refers to a variable defined earlier in the container's env and is
  expanded in env values, command and args; ``$$`` escapes a ``$``; an
  undefined reference stays as written (kubelet's expansion rules).
- ``workingDir`` replaces WorkingDir; ``runAsUser``/``runAsGroup`` (container
  first, then pod) replace User.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from podman_sd.errors import RuntimeSetupError
from podman_sd.image.spec import ImageConfig
from podman_sd.manifest import Pod
from podman_sd.manifest.model import Container, FieldPath

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return variables.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def _field_value(
    pod: Pod, container: Container, path: FieldPath, key: str | None, pod_ip: str
) -> str:
    if path is FieldPath.NAME:
        return pod.name
    if path is FieldPath.NAMESPACE:
        return pod.namespace
    if path is FieldPath.LABEL:
        return pod.labels.get(key or "", "")
    if path is FieldPath.POD_IP:
        return pod_ip
    raise RuntimeSetupError(
        f"container {container.name}: env fieldRef {path.value} is not supported"
    )


def app_environment(
    pod: Pod, container: Container, config: ImageConfig, pod_ip: str = "127.0.0.1"
) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in config.env:
        name, sep, value = item.partition("=")
        if sep:
            env[name] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOSTNAME"] = pod.spec.hostname or pod.name
    defined: dict[str, str] = {}
    for var in container.env:
        if var.value_from is not None:
            value = _field_value(
                pod, container, var.value_from.field_path, var.value_from.key, pod_ip
            )
        else:
            value = expand(var.value or "", defined)
        defined[var.name] = value
        env[var.name] = value
    return env


def app_argv(container: Container, config: ImageConfig, env: Mapping[str, str]) -> tuple[str, ...]:
    defined = {var.name: env[var.name] for var in container.env if var.name in env}
    if container.command:
        entrypoint = tuple(expand(a, defined) for a in container.command)
        cmd: tuple[str, ...] = ()
    else:
        entrypoint = config.entrypoint
        cmd = config.cmd
    if container.args:
        cmd = tuple(expand(a, defined) for a in container.args)
    argv = entrypoint + cmd
    if not argv:
        raise RuntimeSetupError(
            f"container {container.name}: nothing to run (no command or args in the "
            "manifest, no Entrypoint or Cmd in the image)"
        )
    return argv


def app_user(pod: Pod, container: Container, config: ImageConfig) -> str:
    """The user spec ("uid[:gid]" or names) the app runs as."""
    uid = container.security_context.run_as_user
    if uid is None:
        uid = pod.spec.security_context.run_as_user
    gid = container.security_context.run_as_group
    if gid is None:
        gid = pod.spec.security_context.run_as_group
    if uid is None:
        user, _, group = config.user.partition(":")
        user = user or "0"
        group = str(gid) if gid is not None else group
    else:
        user = str(uid)
        group = str(gid) if gid is not None else ""
    return f"{user}:{group}" if group else user
