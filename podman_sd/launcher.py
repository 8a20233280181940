"""The main process of ``pod@NAME.service``: start a pod, then supervise it.

Steps (DESIGN.md, "The flow of one pod"): parse the manifest; make sure the
images are in the store (through the fetch helper) and unpacked; compile the
pod's launch plan (``runtime/plan.py``; a valid cached plan skips all of
this); enter the pod's own mount namespace and create its net/ipc/uts
namespaces; prepare volumes and the /etc files; run the init containers one
after the other; start each app in its own transient scope; say READY=1 and
hand over to the lean supervisor (``runtime/handover.py``).

Only what starting from a plan needs is imported at the top: this module is
on the path of every `systemctl start`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from podman_sd import names, paths
from podman_sd import syscalls as sc
from podman_sd.errors import ManifestError, PodmanSdError, RuntimeSetupError, SystemdError
from podman_sd.image import layer_use
from podman_sd.runtime import plan as plans
from podman_sd.runtime import volumes
from podman_sd.runtime.app import AppLaunch, PendingApp, StartedApp, prepare, release
from podman_sd.runtime.cgroup import cgroup_dir
from podman_sd.runtime.handover import hand_over
from podman_sd.runtime.logs import relays_for
from podman_sd.runtime.namespaces import PodNamespaces, start_pause
from podman_sd.runtime.podfiles import write_pod_files
from podman_sd.runtime.supervise import (
    STOP_SIGNALS,
    SignalWakeup,
    SupervisedApp,
    Supervisor,
    write_state,
)
from podman_sd.systemd.journal import PRIORITY_ERR, PRIORITY_INFO, JournalWriter
from podman_sd.systemd.notify import Notifier
from podman_sd.systemd.scope_wait import wait_for_cgroup
from podman_sd.systemd.worker import SystemdWorker

if TYPE_CHECKING:
    from podman_sd.manifest import Pod
    from podman_sd.systemd.bus import Systemd


class StopRequested(Exception):
    """`systemctl stop` came while the pod was still starting. What had started
    is stopped; the launcher then ends as any stop does: with success."""


def pod_state_dir(pod: str) -> Path:
    return paths.state_dir() / "pods" / pod


def check_host(pod: Pod) -> None:
    """What `validate` only warns about is an error when the pod starts:
    hostPath types, local image paths, host ports another running pod uses,
    more CPU or memory than the host has."""
    from podman_sd.manifest import host_checks, load_pod
    from podman_sd.manifest.diagnostics import Severity

    others: list[Pod] = []
    containers = (*pod.spec.init_containers, *pod.spec.containers)
    # With the host's network every container port is a host port.
    if pod.spec.host_network and any(c.ports for c in containers):
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


def compile_from_manifest(pod_name: str, notifier: Notifier) -> dict[str, Any]:
    """Read the manifest, pull and unpack its images, and compile the plan."""
    gc.enable()  # off for the fast path (entry.py); this one parses, pulls, unpacks
    from podman_sd.image.ensure import ensure_image
    from podman_sd.image.layers import ensure_unpacked
    from podman_sd.image.spec import MAX_DOCUMENT_SIZE, parse_config
    from podman_sd.image.store import Store
    from podman_sd.manifest import load_pod

    key = plans.manifest_key(pod_name)
    manifest = paths.manifest_path(pod_name)
    if not manifest.exists():
        raise ManifestError(f"{manifest}: no such manifest (pod {pod_name!r})")
    pod = load_pod(manifest)
    for warning in pod.warnings:
        print(warning, file=sys.stderr)  # "FILE:LINE:COL: warning: ..."
    check_host(pod)
    store = Store(paths.state_dir()).create()

    class Prepared:
        def __init__(self, image: Any, config: Any, layers: tuple[Path, ...]) -> None:
            self.image, self.config, self.layers = image, config, layers

    prepared: dict[str, Prepared] = {}
    for container in (*pod.spec.init_containers, *pod.spec.containers):
        notifier.status(f"preparing image {container.image}")
        # A `systemctl stop` of the pod stops its pulls too.
        image = ensure_image(
            store, container.image, container.image_pull_policy, names.pod_service(pod_name)
        )
        raw = store.read_verified_blob(image.config_digest, MAX_DOCUMENT_SIZE)
        config = parse_config(raw, f"image {image.reference}: config")
        prepared[container.name] = Prepared(image, config, ensure_unpacked(store, image))
    key += plans.images_key()
    plan = plans.compile_plan(pod, prepared)
    plans.save(pod_name, plan, key)
    return plan


def clean_stale_state(pod: str, *, volumes_too: bool = False) -> None:
    """Remove files an earlier run left behind (mounts died with its namespaces)."""
    shutil.rmtree(paths.pod_runtime_dir(pod), ignore_errors=True)
    shutil.rmtree(pod_state_dir(pod) / "apps", ignore_errors=True)
    if volumes_too:
        shutil.rmtree(pod_state_dir(pod), ignore_errors=True)
    with contextlib.suppress(OSError):  # nothing kept: no empty folder left either
        pod_state_dir(pod).rmdir()


def record_layers(pod: str, plan: dict[str, Any]) -> None:
    """Say which layers this pod's apps and init containers are built from."""
    paths.pod_runtime_dir(pod).mkdir(parents=True, exist_ok=True)
    apps = (*plan["init"], *plan["apps"])
    layer_use.record(
        layer_use.pod_record(pod), {layer for app in apps for layer in app["launch"]["layers"]}
    )


def messages_dir(pod: str) -> Path:
    """Where the apps' termination-log files are (in the pod's mount namespace)."""
    return paths.pod_runtime_dir(pod) / "messages"


def mount_messages(pod: str, apps: int) -> None:
    """A tmpfs for the apps' termination logs, in the pod's own mount
    namespace (it goes with the pod): Kubernetes keeps 4096 bytes of a
    message; room for twice that per app, and no more."""
    directory = messages_dir(pod)
    directory.mkdir(parents=True, exist_ok=True)
    size = max(64, 8 * apps)
    flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    sc.mount("podman-sd-messages", directory, "tmpfs", flags, f"size={size}k,mode=0755")


def app_launch(
    pod: str,
    app: dict[str, Any],
    etc: tuple[volumes.VolumeMount, ...],
    sources: dict[str, Path],
    namespace_fds: tuple[int, ...],
    own_pid_namespace: bool = True,
) -> AppLaunch:
    """The app's plan made concrete: its directories, mounts and namespaces."""
    name = app["launch"]["name"]
    app_dir = pod_state_dir(pod) / "apps" / name
    mountpoint = paths.pod_runtime_dir(pod) / "apps" / name / "rootfs"
    mountpoint.mkdir(parents=True, exist_ok=True)
    (mountpoint.parent / "scratch").mkdir(exist_ok=True)
    shutil.rmtree(app_dir, ignore_errors=True)  # the writable layer is ephemeral
    upper = work = None
    if not app["read_only"]:
        upper, work = app_dir / "upper", app_dir / "work"
        upper.mkdir(parents=True)
        work.mkdir()
    # Kubernetes' termination message: the app may write why it ended; the
    # supervisor puts it in the journal and in `podman-sd status`. On the
    # pod's small tmpfs (mount_messages): writable by any user, it must not
    # be able to fill the host's /run.
    termination_log = messages_dir(pod) / name
    termination_log.parent.mkdir(parents=True, exist_ok=True)  # mounted there by start_pod
    termination_log.touch()
    termination_log.chmod(0o666)  # writable whatever user the app runs as
    message = volumes.VolumeMount(termination_log, app["termination_message_path"], False)
    launch = dict(app["launch"])
    return AppLaunch(
        **{
            **launch,
            "argv": tuple(launch["argv"]),
            "supplementary_groups": tuple(launch["supplementary_groups"]),
            "capabilities": frozenset(launch["capabilities"]),
            "layers": tuple(Path(layer) for layer in launch["layers"]),
        },
        upper=upper,
        work=work,
        mountpoint=mountpoint,
        mounts=(*etc, message, *volumes.app_mounts(app["mounts"], sources)),
        namespace_fds=namespace_fds,
        own_pid_namespace=own_pid_namespace,
    )


class PodStarter:
    """Starts the apps of one pod in their scopes, with their log streams."""

    def __init__(
        self, plan: dict[str, Any], systemd: Systemd | SystemdWorker, writer: JournalWriter
    ) -> None:
        self.plan = plan
        self.systemd = systemd
        self.writer = writer
        self.service = names.pod_service(plan["pod"])

    def start(self, pending: PendingApp, app: dict[str, Any]) -> tuple[SupervisedApp, list[Any]]:
        from podman_sd.systemd.bus import ScopeSpec

        launch = pending.launch
        scope = app["scope"]

        cgroup: str | None = None

        def place(pid: int) -> None:
            nonlocal cgroup
            self.systemd.start_scope(
                ScopeSpec(
                    name=scope,
                    pids=(pid,),
                    slice=self.plan["slice"],
                    description=f"app {launch.name} of pod {launch.pod}",
                    bound_to=self.service,
                    stop_timeout_usec=self.plan["grace"] * 1_000_000,
                    kill_signal=launch.stop_signal,
                    properties=tuple(app["scope_properties"]),
                )
            )
            wait_for_cgroup(pid, scope)
            # While it surely runs: the supervisor ends what the app leaves
            # in its scope when it exits (runtime/cgroup.py).
            cgroup = cgroup_dir(pid)

        started: StartedApp = release(pending, place)
        container_id = os.urandom(32).hex()
        fields: dict[str, str | int] = {
            "SYSLOG_IDENTIFIER": launch.name,
            "CONTAINER_NAME": launch.name,
            "CONTAINER_ID": container_id[:12],
            "CONTAINER_ID_FULL": container_id,
            "CONTAINER_TAG": launch.name,
            "PODMAN_SD_POD": launch.pod,
            "IMAGE_NAME": launch.image,
        }
        streams = [
            [started.stdout, {**fields, "PRIORITY": PRIORITY_INFO}],
            [started.stderr, {**fields, "PRIORITY": PRIORITY_ERR}],
        ]
        supervised = SupervisedApp(
            name=launch.name,
            pid=started.pid,
            stop_signal=launch.stop_signal,
            relays=relays_for(self.writer, streams, app["message_from_logs"]),  # type: ignore[arg-type]
            info={
                "scope": scope,
                "cgroup": cgroup,
                "image": launch.image,
                # The image it started, whatever the reference names now.
                "image_digest": launch.image_digest,
                "container_id": container_id,
                "termination_log": str(messages_dir(launch.pod) / launch.name),
                "message_from_logs": app["message_from_logs"],
                # What `podman-sd exec` may give at most (runtime/execin.py).
                "capabilities": sorted(launch.capabilities),
                "seccomp": launch.seccomp,
                # How exec probes enter the app: `podman-sd exec POD APP`.
                "exec_argv": [os.path.abspath(sys.argv[0]), "exec", launch.pod, launch.name],
            },
        )
        return supervised, streams


def run_init_containers(
    plan: dict[str, Any], starter: PodStarter, launches: list[tuple[AppLaunch, dict[str, Any]]],
    wakeup: SignalWakeup, notifier: Notifier,
) -> None:  # fmt: skip
    """Each init container runs to completion, in order, before any app."""
    # In the state file while it runs, as the apps later: `podman-sd exec`
    # can enter it and `podman-sd status` shows it.
    state_path = str(paths.pod_state_file(plan["pod"]))

    def record(apps: list[SupervisedApp]) -> None:
        write_state(state_path, plan["pod"], apps)

    for launch, app in launches:
        notifier.status(f"running init container {launch.name}")
        supervised, _ = starter.start(prepare(launch), app)
        supervisor = Supervisor(
            plan["pod"], "Never", plan["grace"], notifier, wakeup, on_change=record
        )
        supervisor.add(supervised)
        record([supervised])
        supervisor.run()
        if supervisor.stop_requested:
            raise StopRequested(
                f"pod {plan['pod']}: stopped while init container {launch.name} ran"
            )
        if supervised.exit_code != 0:
            message = f"init container {launch.name} failed with exit status {supervised.exit_code}"
            notifier.status(message)
            raise RuntimeSetupError(f"pod {plan['pod']}: {message}")


def stop_started(
    plan: dict[str, Any],
    apps: list[SupervisedApp],
    notifier: Notifier,
    wakeup: SignalWakeup,
    why: str = "an app failed to start",
) -> None:
    """A start ends early: stop the apps already running, within the grace period."""
    supervisor = Supervisor(plan["pod"], "Never", plan["grace"], notifier, wakeup)
    for app in apps:
        supervisor.add(app)
    supervisor.begin_stop(why)
    supervisor.run()


def stop_signalled(wakeup: SignalWakeup) -> bool:
    """Whether `systemctl stop` (SIGTERM) or ^C came since the last look."""
    return any(sig in STOP_SIGNALS for sig in wakeup.pending())


def pod_unit_stopping(err: BaseException) -> bool:
    """Whether ERR is systemd refusing a scope because the pod's own unit is
    being stopped (a scope bound to it cannot start then)."""
    return isinstance(err, SystemdError) and "TransactionIsDestructive" in str(err)


def launch(pod_name: str, systemd: Systemd | SystemdWorker | None = None) -> None:
    """Start pod POD_NAME and become its supervisor: on success it never
    returns; it returns when a stop request ended the start (StopRequested).

    SYSTEMD makes the D-Bus calls; by default a ``Systemd`` made here."""
    names.check_pod_name(pod_name)  # also when the manifest is not read (cached plan)
    if not os.environ.get("NOTIFY_SOCKET"):
        # By hand, its scopes (bound to the unit) would start the unit too,
        # and two launchers would fight over one pod.
        raise RuntimeSetupError(
            f"podman-sd launch is the main process of pod@{pod_name}.service: "
            f"use systemctl start pod@{pod_name}"
        )
    notifier = Notifier()
    started_at = time.monotonic()
    # The pod's own mount namespace, entered while this process is still
    # single-threaded (unshare(CLONE_NEWNS) refuses threaded callers):
    # memory volumes mounted here die with the pod, never leak to the host.
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
    try:
        # The layers are found and recorded as in use before any is mounted,
        # under the lock `image prune` decides under (image/layer_use.py).
        with layer_use.recording(paths.state_dir()):
            plan = plans.load_cached(pod_name) or compile_from_manifest(pod_name, notifier)
            clean_stale_state(pod_name)
            record_layers(pod_name, plan)
    except PodmanSdError as err:
        # Not "pulling ..." in `systemctl status` of the failed unit: why.
        notifier.status(f"failed: {err}")
        raise
    # From here on a stop request must stop what was started, not kill us.
    wakeup = SignalWakeup()
    try:
        start_pod(pod_name, plan, notifier, wakeup, systemd, started_at)
    except StopRequested as stopped:
        wakeup.close()
        print(stopped, file=sys.stderr, flush=True)
    except BaseException as err:
        # Children exiting now must not write to a wake-up socket that is gone.
        wakeup.close()
        if isinstance(err, PodmanSdError):
            notifier.status(f"failed: {err}")
        raise


def automatic_restart(pod: str, systemd: Systemd | SystemdWorker) -> bool:
    """Whether systemd started this run of the pod by its Restart= setting.
    NRestarts counts those and goes back to 0 on any start asked for; when it
    cannot be read, this counts as a restart (keeping data is the safe side)."""
    try:
        restarts = systemd.unit_properties(names.pod_service(pod), ["NRestarts"])["NRestarts"]
    except (SystemdError, KeyError):
        return True
    return bool(restarts)


def start_pod(
    pod_name: str,
    plan: dict[str, Any],
    notifier: Notifier,
    wakeup: SignalWakeup,
    systemd: Systemd | SystemdWorker | None,
    started_at: float,
) -> NoReturn:
    """Namespaces, volumes, init containers, apps; then become the supervisor."""
    # Apps whose intermediate parent exits are re-parented to us, so we can
    # wait for them and see their exit status.
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    runtime = paths.pod_runtime_dir(pod_name)
    left = pod_state_dir(pod_name) / "volumes"
    if left.exists():
        if systemd is None:
            from podman_sd.systemd.bus import Systemd

            systemd = Systemd()
        if not automatic_restart(pod_name, systemd):
            # A run that failed keeps its emptyDirs for systemd's restart of
            # the pod (Restart=); this start was asked for instead (maybe
            # after a stop during the restart delay, which runs no clean-up):
            # a new pod, whose emptyDirs start empty.
            shutil.rmtree(left)
    mount_messages(pod_name, len(plan["init"]) + len(plan["apps"]))
    sources = volumes.prepare_volumes(
        plan["volumes"], plan["fs_group"], pod_state_dir(pod_name), runtime
    )
    etc_files = write_pod_files(plan["files"], runtime / "etc")
    etc = tuple(volumes.VolumeMount(src, target, True) for target, src in etc_files.items())
    with ExitStack() as stack:
        namespaces = stack.enter_context(
            PodNamespaces(
                plan["hostname"],
                plan["host_network"],
                plan["host_ipc"],
                tuple((name, value) for name, value in plan["sysctls"]),
            )
        )
        fds = tuple(namespaces.fds.values())
        own_pid = plan["pid_namespace"] == "private"
        if plan["pid_namespace"] == "shared":
            pause = start_pause(sys.executable)
            pid_ns = os.open(f"/proc/{pause}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, pid_ns)
            fds = (*fds, pid_ns)
        writer = JournalWriter()

        def app_launches() -> list[tuple[AppLaunch, dict[str, Any]]]:
            return [(app_launch(pod_name, a, etc, sources, fds, own_pid), a) for a in plan["apps"]]

        # With init containers, the apps' mounts are made after they ran, as
        # the kubelet does: a missing subPath is created (as a directory) only
        # then, so an init container can put a file there first.
        launches = [] if plan["init"] else app_launches()
        pending: list[PendingApp] = []

        @stack.callback
        def abandon_unreleased() -> None:
            for waiting in pending:
                waiting.abandon()

        if not plan["init"]:
            # The apps build their root file systems while the D-Bus library
            # loads (it costs more than everything else in a start).
            pending = [prepare(launch) for launch, _ in launches]
        if systemd is None:
            from podman_sd.systemd.bus import Systemd

            systemd = Systemd()
        systemd.set_unit_properties(plan["slice"], [tuple(p) for p in plan["slice_properties"]])
        starter = PodStarter(plan, systemd, writer)
        run_init_containers(
            plan,
            starter,
            [(app_launch(pod_name, a, etc, sources, fds, own_pid), a) for a in plan["init"]],
            wakeup,
            notifier,
        )
        if plan["init"]:
            launches = app_launches()
            pending = [prepare(launch) for launch, _ in launches]
        apps: list[dict[str, Any]] = []
        inherit: list[int] = []
        started: list[SupervisedApp] = []
        try:
            for (_, app), waiting in zip(launches, list(pending), strict=True):
                if stop_signalled(wakeup):
                    raise StopRequested(f"pod {pod_name}: stopped while its apps started")
                notifier.status(f"starting app {app['launch']['name']}")
                pending.remove(waiting)
                supervised, streams = starter.start(waiting, app)
                started.append(supervised)
                inherit.extend(fd for fd, _ in streams)
                apps.append(
                    {
                        "name": supervised.name,
                        "pid": supervised.pid,
                        "stop_signal": supervised.stop_signal,
                        "streams": streams,
                        "info": supervised.info,
                        "probes": app["probes"],
                        "hooks": app["hooks"],
                    }
                )
        except BaseException as err:
            if isinstance(err, StopRequested) or pod_unit_stopping(err) or stop_signalled(wakeup):
                stop_started(plan, started, notifier, wakeup, "stop requested")
                raise StopRequested(f"pod {pod_name}: stopped while its apps started") from None
            stop_started(plan, started, notifier, wakeup)
            raise
    deadline = plan["deadline"]
    handover = {
        "pod": pod_name,
        "policy": plan["policy"],
        "grace": plan["grace"],
        "state_path": str(paths.pod_state_file(pod_name)),
        "deadline_in": None if deadline is None else deadline - (time.monotonic() - started_at),
        "apps": apps,
    }
    # Every app runs: tell systemd now, so `systemctl start` returns without
    # waiting for the supervisor's interpreter to start. With readiness
    # probes, the pod is ready when they pass: the supervisor says it then.
    if not any("readiness" in app["probes"] or "postStart" in app["hooks"] for app in apps):
        notifier.notify(READY=1, STATUS=f"{len(apps)}/{len(apps)} apps running")
    if isinstance(systemd, SystemdWorker):
        systemd.close()  # no more D-Bus calls: let the worker go
    hand_over(handover, inherit, wakeup)


def cleanup(pod_name: str) -> None:
    """ExecStopPost=: remove runtime files, also after the launcher was killed.

    The emptyDir volumes go too when the unit was stopped on purpose
    (``systemctl stop``): systemd then tells us SERVICE_RESULT=success with
    the launcher's exit 0; after a failure they stay for the restart. A
    failed start also forgets the cached plan, so the next start reads the
    manifest again."""
    names.check_pod_name(pod_name)  # it names directories removed here
    deliberate = os.environ.get("SERVICE_RESULT") == "success"
    if os.environ.get("SERVICE_RESULT") not in (None, "success"):
        plans.forget(pod_name)
    from podman_sd.status import keep_last_state

    keep_last_state(pod_name)  # `podman-sd status` shows how the apps ended
    clean_stale_state(pod_name, volumes_too=deliberate)
    # The pod's slice stays active after its last scope is gone (slices are
    # not collected while active): stop it, so a stopped pod leaves no unit
    # behind. Queued, not waited for.
    from podman_sd.errors import SystemdError
    from podman_sd.systemd.bus import Systemd

    with contextlib.suppress(SystemdError):
        Systemd().stop_unit(names.pod_slice(pod_name))
