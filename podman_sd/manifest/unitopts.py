"""podman-sd's own settings, kept in ``podman-sd.io/`` annotations so that a
manifest stays a valid Kubernetes Pod. See generator.py for what each does.
"""

from __future__ import annotations

import re

from podman_sd.manifest.diagnostics import show
from podman_sd.manifest.model import UnitOptions
from podman_sd.manifest.names import dns_label, unit_name
from podman_sd.manifest.reader import Context, Fields, suggest
from podman_sd.manifest.yamlnode import Node

PREFIX = "podman-sd.io/"
KNOWN = frozenset({"description", "after", "requires", "wanted-by", "required-by", "restart-sec"})
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
            if not text.isdigit() or int(text) > 86400:
                ctx.error(node, path, f"{show(text)} is not a whole number of seconds (0 to 86400)")
            else:
                values["restart_sec"] = int(text)
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
