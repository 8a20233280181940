"""Where podman-sd keeps its configuration and state (DESIGN.md, "Names and paths").

Every path can be moved with an environment variable, so tests and the
generator can point at other folders; installed systems use the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path


def _env_path(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable, default))


def config_dir() -> Path:
    return _env_path("PODMAN_SD_CONFIG_DIR", "/etc/podman-sd")


def pods_dir() -> Path:
    return _env_path("PODMAN_SD_PODS_DIR", str(config_dir() / "pods"))


def state_dir() -> Path:
    return _env_path("PODMAN_SD_STATE_DIR", "/var/lib/podman-sd")


def runtime_dir() -> Path:
    return _env_path("PODMAN_SD_RUNTIME_DIR", "/run/podman-sd")


def manifest_path(pod: str) -> Path:
    return pods_dir() / f"{pod}.yaml"


def pod_runtime_dir(pod: str) -> Path:
    return runtime_dir() / "pods" / pod


def pod_state_file(pod: str) -> Path:
    """The running pod's apps, PIDs, scopes and exits, kept by its supervisor."""
    return pod_runtime_dir(pod) / "state.json"
