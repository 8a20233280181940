"""What `podman-sd status` and `podman-sd list` report.

The running supervisor keeps /run/podman-sd/pods/NAME/state.json current
(apps, PIDs, scopes, exit codes); systemd knows the unit's state and its
restart count; the store knows the image digests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from podman_sd import names, paths
from podman_sd.image.store import Store
from podman_sd.systemd.bus import Systemd

UNIT_PROPERTIES = ("ActiveState", "SubState", "NRestarts", "MainPID", "StatusText", "Result")


def _runtime_state(pod: str) -> dict[str, Any]:
    try:
        state = json.loads((paths.pod_runtime_dir(pod) / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def pod_status(pod: str, systemd: Systemd) -> dict[str, Any]:
    unit = names.pod_service(pod)
    props = systemd.unit_properties(unit, UNIT_PROPERTIES)
    active = props.get("ActiveState") in ("active", "activating", "deactivating", "reloading")
    state = _runtime_state(pod) if active else {}
    images = Store(paths.state_dir()).images()
    apps = []
    for app in state.get("apps", []):
        record = images.get(app.get("image", ""))
        apps.append({**app, "image_digest": record.manifest_digest if record else None})
    return {
        "pod": pod,
        "unit": unit,
        "state": props.get("ActiveState"),
        "sub_state": props.get("SubState"),
        "status": props.get("StatusText"),
        "restarts": props.get("NRestarts"),
        "launcher_pid": props.get("MainPID") or None,
        "slice": names.pod_slice(pod),
        "apps": apps,
    }


def known_pods() -> list[str]:
    pods = {p.stem for p in paths.pods_dir().glob("*.yaml")}
    runtime = paths.runtime_dir() / "pods"
    if runtime.is_dir():
        pods.update(p.name for p in runtime.iterdir() if p.is_dir())
    return sorted(pods)


def format_status(status: dict[str, Any]) -> str:
    lines = [
        f"pod {status['pod']}: {status['state']} ({status['sub_state']})"
        + (f", {status['status']}" if status["status"] else ""),
        f"  unit {status['unit']}, restarts {status['restarts']}, slice {status['slice']}",
    ]
    if status["apps"]:
        lines.append(f"  {'APP':<20} {'PID':>7} {'EXIT':>5}  {'SCOPE':<40} IMAGE")
    for app in status["apps"]:
        exit_code = "" if app.get("exit_code") is None else str(app["exit_code"])
        digest = (app.get("image_digest") or "")[:19]
        lines.append(
            f"  {app['name']:<20} {app['pid']:>7} {exit_code:>5}  {app.get('scope', ''):<40} "
            f"{app.get('image', '')} {digest}"
        )
    return "\n".join(lines)


def manifest_exists(pod: str) -> bool:
    return Path(paths.manifest_path(pod)).exists()


def app_names(pod: str) -> set[str]:
    """The apps and init containers POD has or had: those of its running
    state and of its manifest, if it parses (empty when neither is known)."""
    from podman_sd.errors import ManifestError
    from podman_sd.manifest import load_pod

    known = {str(app.get("name")) for app in _runtime_state(pod).get("apps", [])}
    if manifest_exists(pod):
        try:
            spec = load_pod(paths.manifest_path(pod)).spec
        except ManifestError:
            return known
        known.update(c.name for c in (*spec.init_containers, *spec.containers))
    return known
