"""Making sure a pod's image is in the store, honouring imagePullPolicy.

Pulling is never done in this process. It runs ``podman-sd-fetch``, the
separate helper that alone reads image sources, as a transient systemd
service under its own system user ``podman-sd-fetch``: no capabilities,
``NoNewPrivileges``, a read-only view of the system except the store, and
only the address families it needs. ``systemd-run --wait --pipe`` hands back
its JSON result on stdout and its one-line error on stderr.

Store ownership. The helper must commit blobs and the image index, the
root launcher must stay safe. So, before each pull (as root):

    /var/lib/podman-sd/            root:podman-sd-fetch 0775 (the helper
                                   replaces images.json by a rename)
    blobs/                         root 0755
    blobs/sha256/, blobs/incoming/ podman-sd-fetch
    images.json, *.lock            podman-sd-fetch (root may have replaced them)
    layers/, pods/                 root 0755, created here first, and
                                   read-only in the helper's mount
                                   namespace: mount points cannot be renamed
                                   or removed (EBUSY), so the helper cannot
                                   swap them for its own.
    blobs/                         likewise a mount point there (bound onto
                                   itself, writable): else a blobs/ of the
                                   helper's in its place would turn root's
                                   prune (deletes) and the chowns here to
                                   any directory.

Not a sticky directory: with fs.protected_regular=2 even root may not open
(O_CREAT) a file another user owns in a group-writable sticky directory, and
the launcher opens store.lock that way. The launcher re-checks each layer's
digest while unpacking, so a blob the helper got wrong cannot become a
rootfs.

Without systemd (a plain unit test) the helper can run as a child process,
but only when PODMAN_SD_FETCH_UNSANDBOXED=1 says so explicitly.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from podman_sd import paths
from podman_sd.errors import CommandError, ImageError
from podman_sd.image.reference import parse_reference
from podman_sd.image.store import ImageRecord, Store
from podman_sd.run import run
from podman_sd.systemd.notify import Notifier

if TYPE_CHECKING:
    # Only for the annotation: importing the manifest package (its parser,
    # yaml) would cost `podman-sd image pull` tens of milliseconds.
    from podman_sd.manifest.model import PullPolicy

FETCH_USER = "podman-sd-fetch"
# The same line as packaging/podman-sd.sysusers, for hosts where `make
# install` did not run systemd-sysusers.
SYSUSERS_LINE = f'u {FETCH_USER} - "podman-sd image fetch helper" - -'
UNSANDBOXED = "PODMAN_SD_FETCH_UNSANDBOXED"
PASSED_ENVIRONMENT = ("PODMAN_SD_STATE_DIR", "PODMAN_SD_CONFIG_DIR")

# How the helper's one-line error starts (cli_errors.handle_errors).
HELPER_ERROR = "podman-sd-fetch: error: "

# How long each keep-alive extends the pod unit's start timeout, and how often.
KEEPALIVE_USEC = 60_000_000
KEEPALIVE_EVERY = 15.0


def fetch_command() -> list[str]:
    """podman-sd-fetch beside the running podman-sd, or the module in a checkout."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "podman-sd-fetch")
    if os.access(beside, os.X_OK):
        return [beside]
    return [sys.executable, "-m", "podman_sd.fetch.main"]


def fetch_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(FETCH_USER)
    except KeyError:
        run(["systemd-sysusers", "--inline", SYSUSERS_LINE])
    try:
        return pwd.getpwnam(FETCH_USER)
    except KeyError:
        raise ImageError(
            f"the system user {FETCH_USER} does not exist; run systemd-sysusers"
        ) from None


def _own(path: Path, uid: int, gid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, uid, gid, follow_symlinks=False)


def prepare_store(store: Store, uid: int, gid: int) -> None:
    """Lay out the store so that the helper can write exactly its part."""
    root = store.root
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, 0, gid)
    os.chmod(root, 0o775)
    for directory in (store.blobs.parent, store.layers.parent, store.layers, root / "pods"):
        directory.mkdir(mode=0o755, exist_ok=True)
    for directory in (store.blobs, store.incoming):
        directory.mkdir(mode=0o755, exist_ok=True)
        _own(directory, uid, gid)
    for path in (store.index_path, root / "store.lock", store.pulls_lock_path):
        _own(path, uid, gid)


def helper_properties(state_dir: Path) -> list[str]:
    properties = [
        f"User={FETCH_USER}",
        f"Group={FETCH_USER}",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "UMask=0022",
        f"ReadWritePaths={state_dir}",
        f"ReadOnlyPaths=-{state_dir / 'layers'} -{state_dir / 'pods'}",
        f"BindPaths={state_dir / 'blobs'}",
    ]
    return properties


def helper_argv(reference: str, bound_to: str | None = None) -> list[str]:
    """The command that runs the helper; BOUND_TO: the unit whose stop (or
    failure) stops the pull too, e.g. the pod's service that needs the image."""
    # The auth file is root's (mode 0600); the helper reads it on stdin.
    command = [*fetch_command(), "pull", "--json", "--auth-stdin", reference]
    if os.environ.get(UNSANDBOXED) == "1":
        return command
    if not Path("/run/systemd/system").is_dir():
        raise ImageError(
            f"cannot pull {reference}: podman-sd-fetch runs as a systemd service and systemd "
            f"is not running ({UNSANDBOXED}=1 runs it unsandboxed, for tests only)"
        )
    if os.geteuid() != 0:
        raise ImageError(f"cannot pull {reference}: pulling images needs root")
    user = fetch_user()
    state_dir = paths.state_dir()
    prepare_store(Store(state_dir), user.pw_uid, user.pw_gid)
    return [
        "systemd-run",
        "--wait",
        "--pipe",
        "--quiet",
        "--collect",
        "--service-type=exec",
        f"--unit=podman-sd-fetch-{os.urandom(6).hex()}",
        f"--description=podman-sd-fetch {reference}",
        *(f"--property={p}" for p in helper_properties(state_dir)),
        # No After=: the pod's service waits for the pull while it starts.
        *([f"--property=BindsTo={bound_to}"] if bound_to else []),
        *(f"--setenv={k}={os.environ[k]}" for k in PASSED_ENVIRONMENT if k in os.environ),
        *command,
    ]


@contextlib.contextmanager
def keepalive(reference: str, notifier: Notifier | None = None) -> Iterator[None]:
    """Inside pod@NAME: STATUS= and EXTEND_TIMEOUT_USEC= while the pull runs.

    The helper's own NOTIFY_SOCKET belongs to its transient unit, so the
    launcher (the pod unit's main process) speaks for it.
    """
    notifier = notifier or Notifier()
    if not notifier.enabled:
        yield
        return
    import threading

    done = threading.Event()

    def beat() -> None:
        waited = 0.0
        while True:
            notifier.notify(
                STATUS=f"pulling {reference} ({int(waited)} s)", EXTEND_TIMEOUT_USEC=KEEPALIVE_USEC
            )
            if done.wait(KEEPALIVE_EVERY):
                return
            waited += KEEPALIVE_EVERY

    thread = threading.Thread(target=beat, name="pull-keepalive", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def read_auth_file() -> bytes:
    from podman_sd.fetch.auth import MAX_AUTH_FILE, default_auth_file

    path = default_auth_file()
    try:
        with path.open("rb") as file:
            return file.read(MAX_AUTH_FILE + 1)
    except FileNotFoundError:
        return b""
    except OSError as err:
        raise ImageError(f"cannot read credentials from {path}: {err.strerror}") from None


def pull_with_helper(reference: str, bound_to: str | None = None) -> ImageRecord:
    argv = helper_argv(reference, bound_to)
    auth = read_auth_file()
    try:
        with keepalive(reference):
            # On a terminal the helper draws its progress bars on our stderr
            # (systemd-run --pipe hands it our descriptors).
            result = run(argv, input=auth, show_stderr=sys.stderr.isatty())
    except CommandError as err:
        # The helper's own line names the image and why (e.g. which trust
        # policy scope refused it); the systemd-run command line around it
        # would push that out of sight in `systemctl status`.
        _, found, why = str(err).partition(f" failed: {HELPER_ERROR}")
        if found:
            raise ImageError(f"podman-sd-fetch: {why}") from None
        raise
    try:
        return ImageRecord.from_json(json.loads(result.stdout))
    except (ValueError, KeyError, TypeError) as err:
        raise ImageError(f"podman-sd-fetch gave no image record for {reference} ({err})") from None


def present_image(store: Store, image: str) -> ImageRecord | None:
    """The stored image for what the manifest says (a short name: any search registry)."""
    if image.startswith(("oci:", "oci-archive:")):
        # Local transports name exactly one image; no registries.conf needed
        # (this runs at every pod start, so it should cost nothing).
        return store.image(str(parse_reference(image)))
    from podman_sd.fetch.registries import candidates, load_registries_conf

    for ref in candidates(image, load_registries_conf()):
        record = store.image(str(ref))
        if record is not None:
            return record
    return None


def ensure_image(
    store: Store, image: str, policy: PullPolicy, bound_to: str | None = None
) -> ImageRecord:
    """The image, pulled if POLICY says so; a pull stops with unit BOUND_TO."""
    from podman_sd.manifest.model import PullPolicy

    present = present_image(store, image)
    if policy is PullPolicy.NEVER:
        if present is None:
            raise ImageError(f"image {image} is not in the store and imagePullPolicy is Never")
        return present
    if policy is PullPolicy.IF_NOT_PRESENT and present is not None:
        return present
    parse_reference(image)  # a bad name is a clear error before any helper starts
    return pull_with_helper(image, bound_to)
