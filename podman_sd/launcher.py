"""The main process of ``pod@NAME.service``: start a pod, then supervise it.

Steps (DESIGN.md, "The flow of one pod"): parse the manifest; make sure the
images are in the store (through the fetch helper) and unpacked; enter the
pod's own mount namespace and create its net/ipc/uts namespaces; prepare
volumes and the /etc files; run the init containers one after the other;
start each app in its own transient scope; then hand over to the lean
supervisor (``runtime/handover.py``), which says READY=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podman_sd import names, paths
from podman_sd import syscalls as sc
from podman_sd.errors import ManifestError, RuntimeSetupError
from podman_sd.image.ensure import ensure_image
from podman_sd.image.layers import ensure_unpacked
from podman_sd.image.spec import MAX_DOCUMENT_SIZE, ImageConfig, parse_config
from podman_sd.image.store import ImageRecord, Store
from podman_sd.manifest import Pod, load_pod
from podman_sd.manifest.model import Container
from podman_sd.runtime import appspec, caps, limits, podfiles, volumes
from podman_sd.runtime.app import AppLaunch, StartedApp, spawn
from podman_sd.runtime.handover import hand_over
from podman_sd.runtime.logs import LogRelay
from podman_sd.runtime.namespaces import PodNamespaces
from podman_sd.runtime.supervise import SignalWakeup, SupervisedApp, Supervisor
from podman_sd.systemd.bus import ScopeSpec, Systemd
from podman_sd.systemd.journal import PRIORITY_ERR, PRIORITY_INFO, JournalWriter
from podman_sd.systemd.notify import Notifier
from podman_sd.systemd.scope_wait import wait_for_cgroup


@dataclass(frozen=True)
class PreparedImage:
    image: ImageRecord
    config: ImageConfig
    layers: tuple[Path, ...]


def signal_number(name: str | None) -> int:
    """An image's StopSignal ("SIGQUIT", "QUIT" or "3") as a number."""
    if not name:
        return int(signal.SIGTERM)
    text = name.upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        return int(signal.SIGTERM)


def pod_state_dir(pod: str) -> Path:
    return paths.state_dir() / "pods" / pod


def all_containers(pod: Pod) -> tuple[Container, ...]:
    return (*pod.spec.init_containers, *pod.spec.containers)


def prepare_images(pod: Pod, store: Store, notifier: Notifier) -> dict[str, PreparedImage]:
    prepared: dict[str, PreparedImage] = {}
    for container in all_containers(pod):
        notifier.status(f"preparing image {container.image}")
        image = ensure_image(store, container.image, container.image_pull_policy)
        raw = store.read_verified_blob(image.config_digest, MAX_DOCUMENT_SIZE)
        config = parse_config(raw, f"image {image.reference}: config")
        prepared[container.name] = PreparedImage(image, config, ensure_unpacked(store, image))
    return prepared


def check_host(pod: Pod) -> None:
    """What `validate` only warns about is an error when the pod starts:
    hostPath types, local image paths, host ports another running pod uses,
    more CPU or memory than the host has."""
    from podman_sd.manifest import host_checks
    from podman_sd.manifest.diagnostics import Severity

    others: list[Pod] = []
    if any(port.host_port for c in all_containers(pod) for port in c.ports):
        running = paths.runtime_dir() / "pods"
        for directory in sorted(running.glob("*")) if running.is_dir() else ():
            manifest = paths.manifest_path(directory.name)
            if directory.name != pod.name and manifest.exists():
                try:
                    others.append(load_pod(manifest))
                except ManifestError:
                    continue  # its own start reports it
    problems = host_checks(pod, others, Severity.ERROR)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ManifestError(f"{problems[0]}{more}")


def clean_stale_state(pod: str, *, volumes_too: bool = False) -> None:
    """Remove files an earlier run left behind (mounts died with its namespaces)."""
    shutil.rmtree(paths.pod_runtime_dir(pod), ignore_errors=True)
    shutil.rmtree(pod_state_dir(pod) / "apps", ignore_errors=True)
    if volumes_too:
        shutil.rmtree(pod_state_dir(pod), ignore_errors=True)


def build_launch(
    pod: Pod,
    container: Container,
    prepared: PreparedImage,
    mounts: tuple[volumes.VolumeMount, ...],
    namespace_fds: tuple[int, ...],
) -> AppLaunch:
    config = prepared.config
    env = appspec.app_environment(pod, container, config)
    security = container.security_context
    read_only = bool(security.read_only_root_filesystem)
    app_dir = pod_state_dir(pod.name) / "apps" / container.name
    mountpoint = paths.pod_runtime_dir(pod.name) / "apps" / container.name / "rootfs"
    mountpoint.mkdir(parents=True, exist_ok=True)
    (mountpoint.parent / "scratch").mkdir(exist_ok=True)
    upper = work = None
    shutil.rmtree(app_dir, ignore_errors=True)  # the writable layer is ephemeral
    if not read_only:
        upper, work = app_dir / "upper", app_dir / "work"
        upper.mkdir(parents=True)
        work.mkdir()
    capabilities = security.capabilities
    privileged = bool(security.privileged)
    pod_security = pod.spec.security_context
    groups = pod_security.supplemental_groups
    if pod_security.fs_group is not None:
        groups = (*groups, pod_security.fs_group)
    non_root = security.run_as_non_root
    if non_root is None:
        non_root = pod_security.run_as_non_root
    return AppLaunch(
        pod=pod.name,
        name=container.name,
        argv=appspec.app_argv(container, config, env),
        env=env,
        working_dir=container.working_dir or config.working_dir or "/",
        user=appspec.app_user(pod, container, config),
        supplementary_groups=groups,
        capabilities=caps.effective_set(
            capabilities.add if capabilities else (),
            capabilities.drop if capabilities else (),
            privileged,
        ),
        no_new_privileges=not privileged and security.allow_privilege_escalation is not True,
        layers=prepared.layers,
        upper=upper,
        work=work,
        mountpoint=mountpoint,
        mounts=mounts,
        run_as_non_root=bool(non_root),
        namespace_fds=namespace_fds,
        stop_signal=signal_number(config.stop_signal),
        image=prepared.image.reference,
    )


class PodStarter:
    """Starts the apps of one pod in their scopes, with their log streams."""

    def __init__(self, pod: Pod, systemd: Systemd, writer: JournalWriter) -> None:
        self.pod = pod
        self.systemd = systemd
        self.writer = writer
        self.service = names.pod_service(pod.name)
        self.slice = names.pod_slice(pod.name)

    def start(self, launch: AppLaunch, container: Container) -> tuple[SupervisedApp, list[Any]]:
        scope = names.app_scope(self.pod.name, launch.name)
        grace = self.pod.spec.termination_grace_period_seconds
        self.systemd.reset_failed(scope)

        def place(pid: int) -> None:
            self.systemd.start_scope(
                ScopeSpec(
                    name=scope,
                    pids=(pid,),
                    slice=self.slice,
                    description=f"app {launch.name} of pod {self.pod.name}",
                    bound_to=self.service,
                    stop_timeout_usec=grace * 1_000_000,
                    kill_signal=launch.stop_signal,
                    properties=limits.resource_properties(container.resources),
                )
            )
            wait_for_cgroup(pid, scope)

        started: StartedApp = spawn(launch, place)
        container_id = os.urandom(32).hex()
        fields: dict[str, str | int] = {
            "SYSLOG_IDENTIFIER": launch.name,
            "CONTAINER_NAME": launch.name,
            "CONTAINER_ID": container_id[:12],
            "CONTAINER_ID_FULL": container_id,
            "CONTAINER_TAG": launch.name,
            "PODMAN_SD_POD": self.pod.name,
            "IMAGE_NAME": launch.image,
        }
        streams = [
            [started.stdout, {**fields, "PRIORITY": PRIORITY_INFO}],
            [started.stderr, {**fields, "PRIORITY": PRIORITY_ERR}],
        ]
        app = SupervisedApp(
            name=launch.name,
            pid=started.pid,
            stop_signal=launch.stop_signal,
            relays=[LogRelay(self.writer, fd, f) for fd, f in streams],  # type: ignore[arg-type]
            info={
                "scope": scope,
                "image": launch.image,
                "container_id": container_id,
                # For `image prune`: these layers are in use while the pod runs.
                "layers": [layer.name for layer in launch.layers],
            },
        )
        return app, streams


def run_init_containers(
    pod: Pod,
    starter: PodStarter,
    launches: list[tuple[AppLaunch, Container]],
    wakeup: SignalWakeup,
    notifier: Notifier,
) -> None:
    """Each init container runs to completion, in order, before any app."""
    for launch, container in launches:
        notifier.status(f"running init container {launch.name}")
        app, _ = starter.start(launch, container)
        supervisor = Supervisor(
            pod.name, "Never", pod.spec.termination_grace_period_seconds, notifier, wakeup
        )
        supervisor.add(app)
        supervisor.run()
        if supervisor.stop_requested:
            raise RuntimeSetupError(
                f"pod {pod.name}: stopped while init container {launch.name} ran"
            )
        if app.exit_code != 0:
            message = f"init container {launch.name} failed with exit status {app.exit_code}"
            notifier.status(message)
            raise RuntimeSetupError(f"pod {pod.name}: {message}")


def launch(pod_name: str) -> int:
    notifier = Notifier()
    manifest = paths.manifest_path(pod_name)
    if not manifest.exists():
        raise ManifestError(f"{manifest}: no such manifest (pod {pod_name!r})")
    pod = load_pod(manifest)
    for warning in pod.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    check_host(pod)
    started_at = time.monotonic()
    # The pod's own mount namespace, entered while this process is still
    # single-threaded (unshare(CLONE_NEWNS) refuses threaded callers):
    # memory volumes mounted here die with the pod, never leak to the host.
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    store = Store(paths.state_dir()).create()
    prepared = prepare_images(pod, store, notifier)
    clean_stale_state(pod.name)
    # From here on a stop request must stop what was started, not kill us.
    wakeup = SignalWakeup()
    # Apps whose intermediate parent exits are re-parented to us, so we can
    # wait for them and see their exit status.
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    hostname = pod.spec.hostname or pod.name
    runtime = paths.pod_runtime_dir(pod.name)
    sources = volumes.prepare_volumes(pod, pod_state_dir(pod.name), runtime)
    etc_files = podfiles.write_pod_files(pod, hostname, runtime / "etc")
    etc_mounts = tuple(volumes.VolumeMount(src, target, True) for target, src in etc_files.items())
    with ExitStack() as stack:
        namespaces = stack.enter_context(
            PodNamespaces(
                hostname,
                pod.spec.host_network,
                pod.spec.host_ipc,
                pod.spec.security_context.sysctls,
            )
        )
        fds = tuple(namespaces.fds.values())
        writer = JournalWriter()
        systemd = Systemd()
        systemd.set_unit_properties(names.pod_slice(pod.name), limits.pod_slice_properties(pod))
        starter = PodStarter(pod, systemd, writer)

        def launch_for(container: Container) -> tuple[AppLaunch, Container]:
            mounts = (*etc_mounts, *volumes.app_mounts(pod, container.name, sources))
            return build_launch(pod, container, prepared[container.name], mounts, fds), container

        run_init_containers(
            pod, starter, [launch_for(c) for c in pod.spec.init_containers], wakeup, notifier
        )
        apps: list[dict[str, Any]] = []
        inherit: list[int] = []
        started: list[SupervisedApp] = []
        try:
            for container in pod.spec.containers:
                notifier.status(f"starting app {container.name}")
                app, streams = starter.start(*launch_for(container))
                started.append(app)
                inherit.extend(fd for fd, _ in streams)
                apps.append(
                    {
                        "name": app.name,
                        "pid": app.pid,
                        "stop_signal": app.stop_signal,
                        "streams": streams,
                        "info": app.info,
                    }
                )
        except BaseException:
            stop_started(pod, started, notifier, wakeup)
            raise
    deadline = pod.spec.active_deadline_seconds
    plan = {
        "pod": pod.name,
        "policy": pod.spec.restart_policy.value,
        "grace": pod.spec.termination_grace_period_seconds,
        "state_path": str(runtime / "state.json"),
        "deadline_in": None if deadline is None else deadline - (time.monotonic() - started_at),
        "apps": apps,
    }
    # Every app runs: tell systemd now, so `systemctl start` returns without
    # waiting for the supervisor's interpreter to start.
    notifier.notify(READY=1, STATUS=f"{len(apps)}/{len(apps)} apps running")
    hand_over(plan, inherit)


def stop_started(
    pod: Pod, apps: list[SupervisedApp], notifier: Notifier, wakeup: SignalWakeup
) -> None:
    """A later app failed to start: stop the ones already running."""
    supervisor = Supervisor(
        pod.name, "Never", pod.spec.termination_grace_period_seconds, notifier, wakeup
    )
    for app in apps:
        supervisor.add(app)
    supervisor.begin_stop("an app failed to start")
    supervisor.run()


def cleanup(pod_name: str) -> None:
    """ExecStopPost=: remove runtime files, also after the launcher was killed.

    The emptyDir volumes go too when the unit was stopped on purpose
    (``systemctl stop``): systemd then tells us SERVICE_RESULT=success with
    the launcher's exit 0; after a failure they stay for the restart."""
    deliberate = os.environ.get("SERVICE_RESULT") == "success"
    clean_stale_state(pod_name, volumes_too=deliberate)
