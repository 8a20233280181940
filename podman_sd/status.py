"""What `podman-sd status` and `podman-sd list` report.

The running supervisor keeps /run/podman-sd/pods/NAME/state.json current
(apps, PIDs, scopes, exit codes); systemd knows the unit's state and its
restart count; the store knows the image digests. When the pod ends, its
runtime directory goes (ExecStopPost=), but a copy of its last state stays
in /run/podman-sd/last/NAME.json, so that `status` still shows how its apps
ended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podman_sd import names, paths

if TYPE_CHECKING:
    from podman_sd.systemd.bus import Systemd

UNIT_PROPERTIES = ("ActiveState", "SubState", "NRestarts", "MainPID", "StatusText", "Result")


def runtime_state(pod: str) -> dict[str, Any]:
    try:
        state = json.loads(paths.pod_state_file(pod).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def last_state_path(pod: str) -> Path:
    return paths.runtime_dir() / "last" / f"{pod}.json"


def keep_last_state(pod: str) -> None:
    """Keep the pod's state.json beyond its runtime directory: the launcher's
    ``cleanup`` (ExecStopPost=) calls this before it removes that directory.

    Under /run, so it tells of this boot's last run only. A run that ended
    before any app or init container ran (a bad manifest, a missing image)
    has no state: an older run's copy goes, not to pass for this run's."""
    names.check_pod_name(pod)  # it names a file written here
    last = last_state_path(pod)
    try:
        try:
            state = paths.pod_state_file(pod).read_bytes()
        except FileNotFoundError:
            last.unlink(missing_ok=True)
            return
        last.parent.mkdir(parents=True, exist_ok=True)
        tmp = last.with_name(f".{last.name}.tmp")
        tmp.write_bytes(state)
        tmp.replace(last)
    except OSError:
        pass  # status is informational: the cleanup goes on


def _last_state(pod: str) -> dict[str, Any]:
    try:
        state = json.loads(last_state_path(pod).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def pod_status(pod: str, systemd: Systemd) -> dict[str, Any]:
    """The unit, and the apps of the running pod; when none runs (it ended,
    or systemd is about to restart it), those of its last run, with how they
    ended (``last_run``)."""
    from podman_sd.image.store import Store

    unit = names.pod_service(pod)
    props = systemd.unit_properties(unit, UNIT_PROPERTIES)
    active = props.get("ActiveState") in ("active", "activating", "deactivating", "reloading")
    state = runtime_state(pod) if active else {}
    last_run = not state.get("apps")
    if last_run:
        state = _last_state(pod)
        last_run = bool(state.get("apps"))
    apps = []
    images = None
    for app in state.get("apps", []):
        digest = app.get("image_digest")
        if not digest:
            # A state written by a launcher that did not record it: the
            # store's image for the reference (it may have moved since).
            if images is None:
                images = Store(paths.state_dir()).images()
            record = images.get(app.get("image", ""))
            digest = record.manifest_digest if record else None
        apps.append({**app, "image_digest": digest})
    return {
        "pod": pod,
        "unit": unit,
        "state": props.get("ActiveState"),
        "sub_state": props.get("SubState"),
        # systemd forgets STATUS= when the unit starts again; the state has it.
        "status": props.get("StatusText") or (state.get("status") if last_run else None),
        "restarts": props.get("NRestarts"),
        "launcher_pid": props.get("MainPID") or None,
        "slice": names.pod_slice(pod),
        "apps": apps,
        "last_run": last_run,  # the apps are those of the last run, which ended
    }


def known_pods() -> list[str]:
    """Pods with a manifest or runtime state. Files whose names are no pod
    names (".x.yaml", "Web.yaml", "a_b.yaml") are not pods: the generator
    skips them and `systemctl start pod@...` could never run them."""
    pods = {p.stem for p in paths.pods_dir().glob("*.yaml")}
    runtime = paths.runtime_dir() / "pods"
    if runtime.is_dir():
        pods.update(p.name for p in runtime.iterdir() if p.is_dir())
    return sorted(pod for pod in pods if names.is_pod_name(pod))


def format_status(status: dict[str, Any]) -> str:
    lines = [
        f"pod {status['pod']}: {status['state']} ({status['sub_state']})"
        + (f", {status['status']}" if status["status"] else ""),
        f"  unit {status['unit']}, restarts {status['restarts']}, slice {status['slice']}",
    ]
    last_run = status.get("last_run")
    if last_run:
        lines.append("  last run:")
    if status["apps"]:
        lines.append(f"  {'APP':<20} {'PID':>7} {'EXIT':>5}  {'SCOPE':<40} IMAGE")
    for app in status["apps"]:
        exit_code = "" if app.get("exit_code") is None else str(app["exit_code"])
        if last_run and not exit_code:
            exit_code = "?"  # it ended unseen: the supervisor was killed
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

    known = {str(app.get("name")) for app in runtime_state(pod).get("apps", [])}
    if manifest_exists(pod):
        try:
            spec = load_pod(paths.manifest_path(pod)).spec
        except ManifestError:
            return known
        known.update(c.name for c in (*spec.init_containers, *spec.containers))
    return known
