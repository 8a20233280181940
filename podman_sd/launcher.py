"""The main process of ``pod@NAME.service``: start a pod and supervise it.

Steps (DESIGN.md, "The flow of one pod"): parse the manifest; make sure the
images are in the store (through the fetch helper) and unpacked; create the
pod's namespaces; start each app in its own transient scope; tell systemd
READY=1; relay logs and supervise until the pod stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from podman_sd import names, paths
from podman_sd import syscalls as sc
from podman_sd.errors import ManifestError
from podman_sd.image.ensure import ensure_image
from podman_sd.image.layers import ensure_unpacked
from podman_sd.image.spec import ImageConfig, parse_config
from podman_sd.image.store import ImageRecord, Store, atomic_write
from podman_sd.manifest import Pod, load_pod
from podman_sd.manifest.model import Container
from podman_sd.runtime import appspec, caps
from podman_sd.runtime.app import AppLaunch, spawn
from podman_sd.runtime.logs import LogRelay
from podman_sd.runtime.namespaces import PodNamespaces
from podman_sd.runtime.supervise import SignalWakeup, Supervised, Supervisor
from podman_sd.systemd.bus import ScopeSpec, Systemd
from podman_sd.systemd.journal import PRIORITY_ERR, PRIORITY_INFO, JournalWriter
from podman_sd.systemd.notify import Notifier
from podman_sd.systemd.scope_wait import wait_for_cgroup

# systemd needs a little time beyond the grace period to stop the unit.
STOP_MARGIN_SECONDS = 15


@dataclass(frozen=True)
class PreparedApp:
    container: Container
    image: ImageRecord
    config: ImageConfig
    layers: tuple[Path, ...]


def _signal_number(name: str | None) -> int:
    if not name:
        return signal.SIGTERM
    text = name.upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        return signal.SIGTERM


def prepare_images(pod: Pod, store: Store, notifier: Notifier) -> dict[str, PreparedApp]:
    prepared: dict[str, PreparedApp] = {}
    for container in (*pod.spec.init_containers, *pod.spec.containers):
        notifier.status(f"preparing image {container.image}")
        image = ensure_image(store, container.image, container.image_pull_policy)
        config = parse_config(
            store.read_blob(image.config_digest), f"image {image.reference}: config"
        )
        layers = ensure_unpacked(store, image)
        prepared[container.name] = PreparedApp(container, image, config, layers)
    return prepared


def clean_stale_state(pod: str) -> None:
    """Remove what an earlier run that did not stop cleanly left behind.

    Mounts live in the apps' own mount namespaces and die with them, so only
    files remain: the runtime directory and the apps' writable layers.
    """
    shutil.rmtree(paths.pod_runtime_dir(pod), ignore_errors=True)
    shutil.rmtree(pod_state_dir(pod) / "apps", ignore_errors=True)


def pod_state_dir(pod: str) -> Path:
    return paths.state_dir() / "pods" / pod


def build_launch(pod: Pod, prepared: PreparedApp, namespace_fds: tuple[int, ...]) -> AppLaunch:
    container, config = prepared.container, prepared.config
    env = appspec.app_environment(pod, container, config)
    argv = appspec.app_argv(container, config, env)
    security = container.security_context
    read_only = bool(security.read_only_root_filesystem)
    app_dir = pod_state_dir(pod.name) / "apps" / container.name
    mountpoint = paths.pod_runtime_dir(pod.name) / "apps" / container.name / "rootfs"
    mountpoint.mkdir(parents=True, exist_ok=True)
    upper = work = None
    if not read_only:
        upper, work = app_dir / "upper", app_dir / "work"
        shutil.rmtree(app_dir, ignore_errors=True)  # the writable layer is ephemeral
        upper.mkdir(parents=True)
        work.mkdir()
    added = security.capabilities.add if security.capabilities else ()
    dropped = security.capabilities.drop if security.capabilities else ()
    privileged = bool(security.privileged)
    return AppLaunch(
        pod=pod.name,
        name=container.name,
        argv=argv,
        env=env,
        working_dir=container.working_dir or config.working_dir or "/",
        user=appspec.app_user(pod, container, config),
        supplementary_groups=pod.spec.security_context.supplemental_groups,
        capabilities=caps.effective_set(added, dropped, privileged),
        no_new_privileges=not privileged and security.allow_privilege_escalation is not True,
        layers=prepared.layers,
        upper=upper,
        work=work,
        mountpoint=mountpoint,
        namespace_fds=namespace_fds,
        stop_signal=_signal_number(config.stop_signal),
        image=prepared.image.reference,
    )


class PodRun:
    """One run of one pod, from READY=1 to exit."""

    def __init__(self, pod: Pod, notifier: Notifier) -> None:
        self.pod = pod
        self.notifier = notifier
        self.service = names.pod_service(pod.name)
        self.slice = names.pod_slice(pod.name)
        self.container_ids: dict[str, str] = {}

    def _scope_for(self, systemd: Systemd, launch: AppLaunch) -> ScopeSpec:
        grace = self.pod.spec.termination_grace_period_seconds
        return ScopeSpec(
            name=names.app_scope(self.pod.name, launch.name),
            pids=(),
            slice=self.slice,
            description=f"app {launch.name} of pod {self.pod.name}",
            bound_to=self.service,
            stop_timeout_usec=grace * 1_000_000,
            kill_signal=launch.stop_signal,
        )

    def start_app(self, systemd: Systemd, writer: JournalWriter, launch: AppLaunch) -> Supervised:
        base = self._scope_for(systemd, launch)
        systemd.reset_failed(base.name)

        def place(pid: int) -> None:
            spec = ScopeSpec(**{**base.__dict__, "pids": (pid,)})
            systemd.start_scope(spec)
            wait_for_cgroup(pid, base.name)

        started = spawn(launch, place)
        container_id = secrets.token_hex(32)
        self.container_ids[launch.name] = container_id
        common = {
            "SYSLOG_IDENTIFIER": launch.name,
            "CONTAINER_NAME": launch.name,
            "CONTAINER_ID": container_id[:12],
            "CONTAINER_ID_FULL": container_id,
            "CONTAINER_TAG": launch.name,
            "PODMAN_SD_POD": self.pod.name,
            "IMAGE_NAME": launch.image,
        }
        return Supervised(
            started,
            [
                LogRelay(writer, started.stdout, {**common, "PRIORITY": PRIORITY_INFO}),
                LogRelay(writer, started.stderr, {**common, "PRIORITY": PRIORITY_ERR}),
            ],
        )

    def write_state(self, apps: list[Supervised]) -> None:
        state = {
            "pod": self.pod.name,
            "launcher_pid": os.getpid(),
            "apps": [
                {
                    "name": a.name,
                    "pid": a.started.pid,
                    "scope": names.app_scope(self.pod.name, a.name),
                    "image": a.started.launch.image,
                    "container_id": self.container_ids.get(a.name, ""),
                    "exit_code": a.exit_code,
                }
                for a in apps
            ],
        }
        directory = paths.pod_runtime_dir(self.pod.name)
        with contextlib.suppress(OSError):
            atomic_write(directory / "state.json", json.dumps(state, indent=1).encode())


def launch(pod_name: str) -> int:
    notifier = Notifier()
    wakeup = SignalWakeup((signal.SIGTERM, signal.SIGINT, signal.SIGCHLD))
    manifest = paths.manifest_path(pod_name)
    if not manifest.exists():
        raise ManifestError(f"{manifest}: no such manifest (pod {pod_name!r})")
    pod = load_pod(manifest)
    for warning in pod.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    store = Store(paths.state_dir()).create()
    prepared = prepare_images(pod, store, notifier)
    clean_stale_state(pod.name)
    # Apps whose intermediate parent exits are re-parented to us, so we can
    # wait for them and see their exit status.
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    run = PodRun(pod, notifier)
    hostname = pod.spec.hostname or pod.name
    with ExitStack() as stack:
        namespaces = stack.enter_context(
            PodNamespaces(hostname, pod.spec.host_network, pod.spec.host_ipc)
        )
        fds = tuple(namespaces.fds.values())
        writer = JournalWriter()
        stack.callback(writer.close)
        systemd = Systemd()
        supervisor = Supervisor(
            pod.name,
            pod.spec.restart_policy,
            pod.spec.termination_grace_period_seconds,
            notifier,
            wakeup,
            on_change=run.write_state,
        )
        try:
            for container in pod.spec.containers:
                notifier.status(f"starting app {container.name}")
                launch_spec = build_launch(pod, prepared[container.name], fds)
                supervisor.add(run.start_app(systemd, writer, launch_spec))
        except BaseException:
            supervisor.begin_stop("start failed")
            supervisor.run()
            raise
        run.write_state(list(supervisor.apps.values()))
        notifier.notify(READY=1, STATUS=supervisor.status_text())
        code = supervisor.run()
    clean_stale_state(pod.name)
    return code


def cleanup(pod_name: str) -> None:
    """ExecStopPost=: remove runtime state even after the launcher was killed."""
    clean_stale_state(pod_name)
