"""podman-sd's own settings, kept in ``podman-sd.io/`` annotations so that a
manifest stays a valid Kubernetes Pod. See generator.py for what each does;
``pids-limit`` is ``TasksMax=`` on the pod's slice (runtime/limits.py).
"""

from __future__ import annotations

import re

from podman_sd.manifest.diagnostics import show
from podman_sd.manifest.model import UnitOptions
from podman_sd.manifest.names import dns_label, unit_name
from podman_sd.manifest.reader import Context, Fields, suggest
from podman_sd.manifest.yamlnode import Node

PREFIX = "podman-sd.io/"
KNOWN = frozenset(
    {"description", "after", "requires", "wanted-by", "required-by", "restart-sec", "pids-limit"}
)
# The kernel refuses a pids.max above PID_MAX_LIMIT (include/linux/threads.h,
# 4M on 64-bit; kernel/cgroup/pids.c), and systemd would only log that.
PIDS_MAX = 4 * 1024 * 1024
_SPLIT = re.compile(r"[,\s]+")


def parse_unit_options(
    ctx: Context, meta: Fields, annotations: dict[str, str], pod_name: str | None
) -> UnitOptions:
    ours = {k[len(PREFIX) :]: v for k, v in annotations.items() if k.startswith(PREFIX)}
    if not ours:
        return UnitOptions()
    nodes = meta.node.value["annotations"][1].value

    def where(key: str) -> tuple[Node, str]:
        return nodes[PREFIX + key][1], f"metadata.annotations[{PREFIX}{key}]"

    values: dict[str, object] = {}
    for key, text in ours.items():
        node, path = where(key)
        if key not in KNOWN:
            ctx.warn(
                nodes[PREFIX + key][0],
                path,
                f"unknown podman-sd annotation{suggest(key, KNOWN)}; ignored",
            )
            continue
        if key == "description":
            values["description"] = " ".join(text.split())  # one line for Description=
        elif key == "restart-sec":
            seconds = _whole(text)
            if seconds is None or seconds > 86400:
                ctx.error(node, path, f"{show(text)} is not a whole number of seconds (0 to 86400)")
            else:
                values["restart_sec"] = seconds
        elif key == "pids-limit":
            pids = _whole(text)
            if pids is None or not 1 <= pids <= PIDS_MAX:
                ctx.error(
                    node,
                    path,
                    f"{show(text)} is not a number of tasks (1 to {PIDS_MAX}): the most "
                    "processes and threads the pod's apps may have together",
                )
            else:
                values["pids_limit"] = pids
        else:
            words = tuple(w for w in _SPLIT.split(text) if w)
            check = dns_label if key in ("after", "requires") else unit_name
            for w in words:
                problem = check(w)
                if problem is None and w == pod_name and key in ("after", "requires"):
                    problem = "is this pod itself"
                if problem:
                    what = "a pod name" if check is dns_label else "a unit name"
                    ctx.error(
                        node, path, f"{show(w)} {problem} (expected {what}, comma-separated list)"
                    )
            values[key.replace("-", "_")] = words
    return UnitOptions(**values)  # type: ignore[arg-type]


def _whole(text: str) -> int | None:
    """A whole number written in ASCII digits (str.isdigit() takes "²", which
    int() refuses), short enough for int() (which refuses 4300 digits)."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)
