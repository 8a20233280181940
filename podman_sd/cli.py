"""``podman-sd``: the command-line tool.

    podman-sd validate FILE... [--json]
    podman-sd status NAME [--json]
    podman-sd list [--json]
    podman-sd image pull|import|list|inspect|rm|prune|render|mount|umount ...
    podman-sd trust show|set ...
    podman-sd exec|enter POD APP [-- COMMAND...]
    podman-sd logs NAME [APP] [-f] [-n N] [--since T] [--until T] [-t]
    podman-sd launch NAME       (the main process of pod@NAME.service)
    podman-sd cleanup NAME      (its ExecStopPost=)

Every verb is a small function; errors are turned into one line and an exit
code by ``handle_errors`` only here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from podman_sd import __version__, paths
from podman_sd.cli_errors import handle_errors
from podman_sd.errors import ImageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from podman_sd.image.store import ImageRecord, Store

    Handler = Callable[[argparse.Namespace], int]


def cmd_launch(args: argparse.Namespace) -> int:
    from podman_sd.launcher import launch

    launch(args.name)  # on success it becomes the supervisor and never returns
    return 0  # a stop request ended the start


def cmd_cleanup(args: argparse.Namespace) -> int:
    from podman_sd import names
    from podman_sd.errors import RuntimeSetupError
    from podman_sd.launcher import cleanup

    names.check_pod_name(args.name)
    # systemd runs it as ExecStopPost=, and says so with $SERVICE_RESULT; by
    # hand it must not pull the runtime state from under a running pod.
    if "SERVICE_RESULT" not in os.environ:
        from podman_sd.systemd.bus import Systemd

        unit = names.pod_service(args.name)
        state = Systemd().unit_properties(unit, ["ActiveState"])["ActiveState"]
        if state != "inactive" and state != "failed":
            raise RuntimeSetupError(f"{unit} is {state}: stop it first (systemctl stop {unit})")
    cleanup(args.name)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from podman_sd.manifest.validate_cmd import run_validate

    return run_validate([Path(p) for p in args.files], args.json, sys.stdout)


def cmd_image_pull(args: argparse.Namespace) -> int:
    from podman_sd.image.ensure import pull_with_helper

    # As written: a short name is resolved by the helper through the
    # unqualified-search registries of registries.conf.
    record = pull_with_helper(args.reference)
    # Unpack now, not at the first start: rkt learned that rendering at run
    # time makes every first start slow.
    if not args.no_unpack:
        from podman_sd.image.layers import ensure_unpacked

        ensure_unpacked(_store(), record)
    print(record.manifest_digest)
    return 0


def cmd_image_prune(args: argparse.Namespace) -> int:
    from podman_sd.image.gc import prune

    result = prune(_store())
    if args.json:
        json.dump({"layers": result.layers, "blobs": result.blobs}, sys.stdout, indent=1)
        print()
    else:
        for digest in (*result.layers, *result.blobs):
            print(digest)
        print(f"removed {len(result.layers)} layers and {len(result.blobs)} blobs", file=sys.stderr)
    return 0


def _store() -> Store:
    from podman_sd.image.store import Store

    return Store(paths.state_dir())


def cmd_image_list(args: argparse.Namespace) -> int:
    images = _store().images()
    if args.json:
        json.dump([rec.to_json() for rec in images.values()], sys.stdout, indent=1)
        print()
        return 0
    print(f"{'REFERENCE':<60} {'DIGEST':<19} LAYERS")
    for ref, rec in images.items():
        print(f"{ref:<60} {rec.manifest_digest[:19]:<19} {len(rec.layers)}")
    return 0


def _find_image(reference: str) -> tuple[Store, str, ImageRecord]:
    from podman_sd.image.reference import parse_reference

    store = _store()
    key = str(parse_reference(reference))
    record = store.image(key)
    if record is None:
        raise ImageError(f"image {reference} is not in the store ({store.root})")
    return store, key, record


def cmd_image_inspect(args: argparse.Namespace) -> int:
    _, _, record = _find_image(args.reference)
    json.dump(record.to_json(), sys.stdout, indent=1)
    print()
    return 0


def _layer_dirs(reference: str) -> list[Path]:
    from podman_sd.image.layers import ensure_unpacked

    store, _, record = _find_image(reference)
    return list(ensure_unpacked(store, record))


def cmd_image_render(args: argparse.Namespace) -> int:
    from podman_sd.unpack import render_layers

    render_layers(_layer_dirs(args.reference), Path(args.directory))
    return 0


def _mount_point(reference: str) -> Path:
    import hashlib

    from podman_sd.image.reference import parse_reference

    key = hashlib.sha256(str(parse_reference(reference)).encode()).hexdigest()[:16]
    return paths.runtime_dir() / "mounts" / key


def cmd_image_mount(args: argparse.Namespace) -> int:
    from podman_sd import syscalls as sc
    from podman_sd.image import layer_use

    target = _mount_point(args.reference)
    with layer_use.recording(paths.state_dir()):  # `image prune` keeps them
        layers = _layer_dirs(args.reference)
        target.mkdir(parents=True, exist_ok=True)
        if target.is_mount():
            print(target)
            return 0
        record = layer_use.mount_record(target)
        layer_use.record(record, layers)
    try:
        # Read-only: with no upper layer, overlayfs needs two lower layers.
        if len(layers) == 1:
            sc.mount(layers[0], target, None, sc.MS_BIND)
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
        else:
            lower = ":".join(str(d) for d in reversed(layers))
            sc.mount("overlay", target, "overlay", sc.MS_RDONLY, f"lowerdir={lower}")
    except BaseException:
        if target.is_mount():
            sc.umount2(target)
        record.unlink(missing_ok=True)
        raise
    print(target)
    return 0


def cmd_image_umount(args: argparse.Namespace) -> int:
    from podman_sd import syscalls as sc
    from podman_sd.image import layer_use

    target = _mount_point(args.reference)
    if target.is_mount():
        sc.umount2(target)
    if target.exists():
        target.rmdir()
    layer_use.mount_record(target).unlink(missing_ok=True)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    from podman_sd import names
    from podman_sd.runtime.execin import exec_in_app

    names.check_pod_name(args.pod)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return exec_in_app(args.pod, args.app, command or ["/bin/sh"])


def cmd_logs(args: argparse.Namespace) -> int:
    """The apps' output from the journal (journald keeps it, not us): one app
    as bare lines, or every app with its name in front of each line."""
    from podman_sd.errors import ManifestError
    from podman_sd.logs_cmd import journalctl_argv
    from podman_sd.status import app_names

    # A removed pod's output stays in the journal, for journalctl to show.
    _check_pod(args.name, f" (what it wrote: journalctl -u pod@{args.name})")
    apps = app_names(args.name)
    if args.app and apps and args.app not in apps:
        raise ManifestError(
            f"pod {args.name} has no app {args.app!r} (its apps: {', '.join(sorted(apps))})"
        )
    argv = journalctl_argv(
        args.name,
        args.app,
        follow=args.follow,
        tail=args.tail,
        since=args.since,
        until=args.until,
        timestamps=args.timestamps,
    )
    if args.follow:
        from podman_sd import names
        from podman_sd.logs_cmd import follow_until_ended

        return follow_until_ended(argv, names.pod_service(args.name))
    os.execvp(argv[0], argv)


def cmd_trust_show(args: argparse.Namespace) -> int:
    from podman_sd.trust.cmd import run_trust_show

    return run_trust_show(args.json, sys.stdout)


def cmd_trust_set(args: argparse.Namespace) -> int:
    from podman_sd.trust.cmd import run_trust_set

    return run_trust_set(args.type, args.pubkeyfile, args.scope)


def _pods_using(key: str) -> list[str]:
    """The running pods with an app of the image stored as KEY."""
    from podman_sd.image.reference import parse_reference
    from podman_sd.status import known_pods, runtime_state

    using = []
    for pod in known_pods():
        try:
            apps = runtime_state(pod).get("apps", [])
            images = {str(app["image"]) for app in apps if app.get("image")}
            if key in {str(parse_reference(image)) for image in images}:
                using.append(pod)
        except (LookupError, TypeError, AttributeError, ImageError):
            continue  # no state we can read
    return using


def cmd_image_rm(args: argparse.Namespace) -> int:
    # All are checked before any is removed: an error removes nothing.
    keys = []
    for reference in args.references:
        store, key, _ = _find_image(reference)
        using = _pods_using(key)
        if using and not args.force:
            raise ImageError(
                f"image {reference} is in use by pod {', '.join(using)}; "
                "stop it first, or use --force (its layers stay until it stops)"
            )
        keys.append(key)
    with store.locked():
        for key in dict.fromkeys(keys):
            store.remove_image(key)
            print(key)
    return 0


def _check_pod(name: str, hint: str = "") -> None:
    """NAME is a pod: it has a manifest, or it still runs (a running pod
    whose manifest was removed runs until it is stopped)."""
    from podman_sd import names
    from podman_sd.errors import ManifestError
    from podman_sd.status import known_pods, manifest_exists

    names.check_pod_name(name)
    if not manifest_exists(name) and name not in known_pods():
        raise ManifestError(f"no pod {name!r}: {paths.manifest_path(name)} does not exist{hint}")


def cmd_status(args: argparse.Namespace) -> int:
    from podman_sd.status import format_status, pod_status
    from podman_sd.systemd.bus import Systemd

    _check_pod(args.name)
    status = pod_status(args.name, Systemd())
    if args.json:
        json.dump(status, sys.stdout, indent=1)
        print()
    else:
        print(format_status(status))
    return 0 if status["state"] == "active" else 3  # 3: not running, as `systemctl status`


def cmd_list(args: argparse.Namespace) -> int:
    from podman_sd.status import known_pods, pod_status
    from podman_sd.systemd.bus import Systemd

    systemd = Systemd()
    statuses = [pod_status(pod, systemd) for pod in known_pods()]
    if args.json:
        json.dump(statuses, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'POD':<30} {'STATE':<12} {'APPS':>5} {'RESTARTS':>8}  STATUS")
    for s in statuses:
        # A last run's app without an exit code ended unseen: none runs.
        running = 0 if s["last_run"] else sum(1 for a in s["apps"] if a.get("exit_code") is None)
        print(
            f"{s['pod']:<30} {s['state']:<12} {running:>5} {s['restarts'] or 0:>8}  {s['status'] or ''}"
        )
    return 0


def _count(text: str) -> int:
    """A number of lines: 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines (0 or more)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podman-sd", description="Run Kubernetes pod manifests as systemd units."
    )
    parser.add_argument("--version", action="version", version=f"podman-sd {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    launch = verbs.add_parser("launch", help="run pod NAME (the main process of pod@NAME.service)")
    launch.add_argument("name")
    launch.set_defaults(handler=cmd_launch)

    cleanup = verbs.add_parser("cleanup", help="remove the runtime state of a stopped pod")
    cleanup.add_argument("name")
    cleanup.set_defaults(handler=cmd_cleanup)

    validate = verbs.add_parser("validate", help="check pod manifests")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--json", action="store_true", help="print the findings as JSON")
    validate.set_defaults(handler=cmd_validate)

    status = verbs.add_parser("status", help="show a pod's apps, PIDs, scopes and images")
    status.add_argument("name")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=cmd_status)

    listing_pods = verbs.add_parser("list", aliases=["ps"], help="list pods and their state")
    listing_pods.add_argument("--json", action="store_true", help="print the list as JSON")
    listing_pods.set_defaults(handler=cmd_list)

    image = verbs.add_parser("image", help="manage images in the store")
    image_verbs = image.add_subparsers(dest="image_verb", required=True, metavar="VERB")
    pull = image_verbs.add_parser(
        "pull", aliases=["import"], help="fetch and verify an image (also oci:, oci-archive:)"
    )
    pull.add_argument("reference")
    pull.add_argument(
        "--no-unpack", action="store_true", help="only fetch and verify; unpack at the first start"
    )
    pull.set_defaults(handler=cmd_image_pull)
    render = image_verbs.add_parser("render", help="write an image's flattened rootfs into DIR")
    render.add_argument("reference")
    render.add_argument("directory", metavar="DIR")
    render.set_defaults(handler=cmd_image_render)
    mount = image_verbs.add_parser("mount", help="mount an image read-only; prints where")
    mount.add_argument("reference")
    mount.set_defaults(handler=cmd_image_mount)
    prune = image_verbs.add_parser(
        "prune", aliases=["gc"], help="remove layers and blobs no image or running pod uses"
    )
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(handler=cmd_image_prune)
    umount = image_verbs.add_parser("umount", help="undo `image mount`")
    umount.add_argument("reference")
    umount.set_defaults(handler=cmd_image_umount)
    listing = image_verbs.add_parser("list", aliases=["ls"], help="list images")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_image_list)
    inspect = image_verbs.add_parser("inspect", help="show an image's record")
    inspect.add_argument("reference")
    inspect.set_defaults(handler=cmd_image_inspect)
    remove = image_verbs.add_parser("rm", help="remove images' references")
    remove.add_argument("references", nargs="+", metavar="reference")
    remove.add_argument(
        "-f", "--force", action="store_true", help="also an image a running pod uses"
    )
    remove.set_defaults(handler=cmd_image_rm)
    logs = verbs.add_parser("logs", help="show a pod's output (all apps, or one) from the journal")
    logs.add_argument("name")
    logs.add_argument("app", nargs="?")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep showing new lines until the pod ended"
    )
    logs.add_argument("-n", "--tail", type=_count, metavar="N", help="only the last N lines")
    logs.add_argument(
        "--since", metavar="TIME", help="lines since TIME: 10m, 2026-01-02T15:04:05Z, yesterday"
    )
    logs.add_argument("--until", metavar="TIME", help="lines before TIME (as --since)")
    logs.add_argument("-t", "--timestamps", action="store_true", help="show when each line came")
    logs.set_defaults(handler=cmd_logs)

    exec_ = verbs.add_parser(
        "exec",
        aliases=["enter"],
        help="run a command (default /bin/sh) in a running app, with its namespaces, "
        "scope, user and capabilities",
    )
    exec_.add_argument("pod")
    exec_.add_argument("app")
    exec_.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND...")
    exec_.set_defaults(handler=cmd_exec)

    trust = verbs.add_parser("trust", help="show or change the image trust policy")
    trust_verbs = trust.add_subparsers(dest="trust_verb", required=True, metavar="VERB")
    show = trust_verbs.add_parser("show", help="show the policy")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_trust_show)
    set_ = trust_verbs.add_parser("set", help="set the requirement for SCOPE")
    set_.add_argument(
        "--type", required=True, choices=["accept", "reject", "sigstoreSigned", "signedBy"]
    )
    set_.add_argument("--pubkeyfile", action="append", default=[], metavar="KEY")
    set_.add_argument("scope", metavar="SCOPE", help="default, REGISTRY[/REPO[:TAG]], oci:/PATH")
    set_.set_defaults(handler=cmd_trust_set)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_verb(args)


def run_verb(args: argparse.Namespace) -> int:
    handler: Handler = args.handler
    with handle_errors("podman-sd", args.debug) as status:
        status.code = handler(args)
    return status.code


if __name__ == "__main__":
    sys.exit(main())
