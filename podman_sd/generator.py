"""podman-sd-generator: systemd configuration from pod manifests.

systemd runs this at boot and at every ``systemctl daemon-reload`` with three
output directories (normal, early, late); it writes into the normal one.
For every ``/etc/podman-sd/pods/NAME.yaml`` (``$PODMAN_SD_PODS_DIR`` points
elsewhere, for tests) that validates, it writes the drop-in
``pod@NAME.service.d/50-podman-sd.conf``:

- ``Description=`` from ``podman-sd.io/description`` or the pod name;
- ``Restart=`` from ``spec.restartPolicy``: Always -> ``always``, OnFailure ->
  ``on-failure``, Never -> ``no``; ``RestartSec=`` (``podman-sd.io/restart-sec``,
  default 2 s); ``StartLimitIntervalSec=60`` and ``StartLimitBurst=5``, so a pod
  that keeps crashing ends as a failed unit instead of restarting forever;
- ``TimeoutStopSec=`` = ``terminationGracePeriodSeconds`` + 15 s, the time the
  launcher needs for SIGTERM, the grace period, SIGKILL and unmounting;
- ``SourcePath=`` the manifest, so ``systemctl status`` names it and warns
  when it changed since the last daemon-reload;
- ordering between pods: ``podman-sd.io/after: "db, cache"`` gives
  ``After=`` + ``Wants=`` on ``pod@db.service`` and ``pod@cache.service``;
  ``podman-sd.io/requires`` gives ``After=`` + ``Requires=``. Pods that
  order each other in a circle are an error in the log, and start without
  ``After=`` on each other (systemd would refuse or drop one of them).

Starting at boot. ``pod@.service`` is a template with an ``[Install]``
section, so ``systemctl enable pod@NAME`` works as for any template instance.
The manifest can also say it, so that dropping the file in is enough:
``podman-sd.io/wanted-by: multi-user.target`` (a comma-separated list of
units; ``podman-sd.io/required-by`` likewise) makes the generator create
``NORMAL_DIR/multi-user.target.wants/pod@NAME.service``, a link to the
installed ``pod@.service`` template. Without either, a pod starts only when
asked to (``systemctl start pod@NAME``) or as a dependency.

A manifest with errors gets no drop-in and no links; its errors go to
stderr, and at boot also to the kernel log (/dev/kmsg), both of which end in
the journal. The other pods are generated as usual and the exit status is 1.
``systemctl start pod@NAME`` of a bad manifest fails in the launcher with the
same message. Imports are kept few: this runs on every boot.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from podman_sd.exitcodes import EXIT_DEADLINE
from podman_sd.manifest.model import Pod, RestartPolicy
from podman_sd.manifest.parse import check_pod, read_manifest

# The typing module costs milliseconds at every boot; mypy reads any
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

DEFAULT_PODS_DIR = "/etc/podman-sd/pods"
DROPIN_NAME = "50-podman-sd.conf"
STOP_MARGIN_SEC = 15
DEFAULT_RESTART_SEC = 2
START_LIMIT_INTERVAL_SEC = 60
START_LIMIT_BURST = 5
MAX_LOGGED = 20  # error lines per manifest; the launcher shows them all

# Where `make install` may have put the template; first existing one wins.
# systemd only reads the name of a .wants/ link, but a link that resolves
# keeps `systemctl list-dependencies` and friends happy.
TEMPLATE_DIRS = (
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
TEMPLATE = "pod@.service"

_RESTART = {
    RestartPolicy.ALWAYS: "always",
    RestartPolicy.ON_FAILURE: "on-failure",
    RestartPolicy.NEVER: "no",
}


def unit_name(pod_name: str) -> str:
    # Pod names are DNS labels ([a-z0-9-]), all valid in a unit instance as-is.
    return f"pod@{pod_name}.service"


def _escape_value(text: str) -> str:
    """A free-text unit setting: one line, '%' not read as a specifier."""
    line = "".join(c if c.isprintable() else " " for c in text).strip()
    return line.replace("\\", "\\\\").replace("%", "%%")


def ordering_cycles(pods: list[Pod]) -> list[list[str]]:
    """The groups of pods whose after/requires annotations order them in a
    circle (strongly connected, Tarjan's algorithm): systemd would refuse the
    start ("Transaction order is cyclic") or drop one of the pods' jobs."""
    after = {pod.name: [*pod.unit.after, *pod.unit.requires] for pod in pods}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(name: str) -> None:  # recursion depth: the longest chain of pods
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for other in after[name]:
            if other not in after:
                continue  # no such pod: systemd says so at start
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in on_stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            if len(group) > 1 or name in after[name]:
                cycles.append(sorted(group))

    for name in sorted(after):
        if name not in index:
            visit(name)
    return cycles


def render_dropin(pod: Pod, unordered: frozenset[str] = frozenset()) -> str:
    """The drop-in of POD; no After= on the pods in UNORDERED (its cycle)."""
    unit = pod.unit
    description = unit.description or f"Pod {pod.name} (podman-sd)"
    source = _escape_value(str(pod.source))
    lines = [
        f"# Generated by podman-sd-generator from {source}; edits are lost.",
        "[Unit]",
        f"Description={_escape_value(description)}",
        f"SourcePath={source}",
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL_SEC}",
        f"StartLimitBurst={START_LIMIT_BURST}",
    ]
    for others, dependency in ((unit.after, "Wants"), (unit.requires, "Requires")):
        for other in others:
            if other not in unordered:
                lines.append(f"After={unit_name(other)}")
            lines.append(f"{dependency}={unit_name(other)}")
    restart_sec = DEFAULT_RESTART_SEC if unit.restart_sec is None else unit.restart_sec
    lines += [
        "",
        "[Service]",
        f"Restart={_RESTART[pod.spec.restart_policy]}",
        f"RestartSec={restart_sec}",
        f"TimeoutStopSec={pod.spec.termination_grace_period_seconds + STOP_MARGIN_SEC}",
        # activeDeadlineSeconds ran out: the pod ends failed, like a
        # Kubernetes pod with reason DeadlineExceeded, and is not restarted.
        f"RestartPreventExitStatus={EXIT_DEADLINE}",
    ]
    return "\n".join(lines) + "\n"


def template_path() -> str:
    for directory in TEMPLATE_DIRS:
        path = os.path.join(directory, TEMPLATE)
        if os.path.exists(path):
            return path
    return os.path.join("/usr/lib/systemd/system", TEMPLATE)


class _Log:
    """stderr, plus /dev/kmsg when running as a system generator whose stderr
    is not already the kernel log (early at boot nothing else is listening)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.kmsg: int | None = None
        if os.environ.get("SYSTEMD_SCOPE") == "system" and not _is_kmsg(stream):
            try:
                self.kmsg = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC)
            except OSError:
                self.kmsg = None

    def error(self, message: str) -> None:
        text = f"podman-sd-generator: {message}"
        self.stream.write(text + "\n")
        if self.kmsg is not None:
            with contextlib.suppress(OSError):
                # <3> is LOG_ERR; kmsg takes one record per write.
                os.write(self.kmsg, f"<3>{text}\n".encode(errors="replace")[:1000])

    def close(self) -> None:
        self.stream.flush()
        if self.kmsg is not None:
            os.close(self.kmsg)


def _is_kmsg(stream: TextIO) -> bool:
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    # /dev/kmsg is character device 1:11.
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 11


def manifests(pods_dir: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(pods_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [
        Path(e.path)
        for e in entries
        if e.name.endswith(".yaml") and not e.name.startswith(".") and e.is_file()
    ]


def generate(pods_dir: Path, out_dir: Path, log: TextIO) -> int:
    """Write drop-ins and links for every good manifest; return the number
    of manifests that had errors."""
    logger = _Log(log)
    failed = 0
    template = template_path()
    good: list[Pod] = []
    try:
        for path in manifests(pods_dir):
            try:
                pod, diagnostics = check_pod(read_manifest(path), str(path))
                errors = [str(d) for d in diagnostics if pod is None]
            except Exception as e:
                # ManifestError (unreadable file), or a bug: either way one
                # manifest must never keep the other pods from being generated.
                pod, errors = None, [str(e) if str(e).startswith(str(path)) else f"{path}: {e}"]
            if pod is None:
                failed += 1
                for text in errors[:MAX_LOGGED]:
                    logger.error(text)
                if len(errors) > MAX_LOGGED:
                    logger.error(f"{path}: {len(errors) - MAX_LOGGED} more errors")
                logger.error(f"{path}: skipped; pod@{path.stem}.service will not start")
                continue
            good.append(pod)
        # Pods that order each other in a circle still start (and still
        # need each other), but unordered among themselves.
        unordered: dict[str, frozenset[str]] = {}
        for cycle in ordering_cycles(good):
            failed += 1
            circle = " -> ".join([*cycle, cycle[0]])
            logger.error(
                f"pods {', '.join(cycle)}: podman-sd.io/after and /requires order them in a "
                f"circle ({circle}); they start without After= on each other"
            )
            for name in cycle:
                unordered[name] = frozenset(cycle)
        for pod in good:
            _write(out_dir, pod, template, unordered.get(pod.name, frozenset()))
    finally:
        logger.close()
    return failed


def _write(out_dir: Path, pod: Pod, template: str, unordered: frozenset[str]) -> None:
    name = unit_name(pod.name)
    dropin_dir = out_dir / f"{name}.d"
    dropin_dir.mkdir(parents=True, exist_ok=True)
    (dropin_dir / DROPIN_NAME).write_text(render_dropin(pod, unordered))
    for targets, kind in ((pod.unit.wanted_by, "wants"), (pod.unit.required_by, "requires")):
        for target in targets:
            link_dir = out_dir / f"{target}.{kind}"
            link_dir.mkdir(parents=True, exist_ok=True)
            link = link_dir / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(template)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 3:
        sys.stderr.write("usage: podman-sd-generator NORMAL_DIR [EARLY_DIR [LATE_DIR]]\n")
        return 2
    pods_dir = Path(os.environ.get("PODMAN_SD_PODS_DIR") or DEFAULT_PODS_DIR)
    try:
        failed = generate(pods_dir, Path(args[0]), sys.stderr)
    except OSError as e:
        sys.stderr.write(f"podman-sd-generator: {e}\n")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
