"""``podman-sd validate FILE... [--json]``: report every error and warning.

Exit status: 0 when no file has an error (warnings allowed), 1 otherwise.
Host-dependent findings (host_checks) are warnings here: the manifest may be
meant for another machine; the launcher makes them errors at start.

Text output, one line per finding, then one summary line per file::

    web.yaml:14:9: spec.containers[1].resources.limits.memory: "12 GB" is not ...
    web.yaml:20:3: warning: spec.nodeSelector: ignored: ...
    web.yaml: 1 error, 1 warning

JSON output (``--json``)::

    {"valid": false, "files": [{"file": "web.yaml", "valid": false, "pod": null,
      "errors": [DIAGNOSTIC...], "warnings": [DIAGNOSTIC...]}]}

where DIAGNOSTIC is {"file", "line", "column", "path", "message", "severity"}.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

from podman_sd.errors import ManifestError
from podman_sd.manifest.diagnostics import Diagnostic, Severity
from podman_sd.manifest.hostcheck import host_checks
from podman_sd.manifest.model import Pod
from podman_sd.manifest.parse import check_pod, read_manifest

PODS_DIR = "/etc/podman-sd/pods"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def validate_file(path: Path, others: list[Pod]) -> tuple[Pod | None, list[Diagnostic]]:
    """Every diagnostic of one file, host checks included (as warnings)."""
    try:
        data = read_manifest(path)
    except ManifestError as e:
        return None, list(getattr(e, "diagnostics", []))
    pod, diagnostics = check_pod(data, str(path))
    if pod is not None:
        diagnostics = diagnostics + host_checks(pod, others, Severity.WARNING)
        if not path.name.endswith(".yaml"):
            # check_pod already refuses a metadata.name other than the stem.
            message = (
                f"the generator reads only {PODS_DIR}/NAME.yaml files: name it "
                f"{pod.name}.yaml, or pod@{pod.name}.service will not find it"
            )
            diagnostics.append(Diagnostic(str(path), 0, 0, "", message, Severity.WARNING))
    return pod, diagnostics


def _installed_pods() -> list[Pod]:
    """The pods already in the pods folder, for host-port clashes."""
    pods_dir = os.environ.get("PODMAN_SD_PODS_DIR") or PODS_DIR
    result = []
    try:
        names = sorted(os.listdir(pods_dir))
    except OSError:
        return []
    for name in names:
        if name.endswith(".yaml") and not name.startswith("."):
            path = Path(pods_dir, name)
            try:
                pod, _ = check_pod(read_manifest(path), str(path))
            except ManifestError:
                continue
            if pod is not None:
                result.append(pod)
    return result


def run_validate(paths: list[Path], as_json: bool, out: TextIO) -> int:
    installed = _installed_pods()
    reports = []
    all_valid = True
    for path in paths:
        # A file compared with its own installed copy is no clash.
        others = [p for p in installed if os.path.abspath(p.source) != os.path.abspath(path)]
        pod, diagnostics = validate_file(path, others)
        errors = [d for d in diagnostics if d.severity is Severity.ERROR]
        warnings = [d for d in diagnostics if d.severity is Severity.WARNING]
        valid = pod is not None and not errors
        all_valid = all_valid and valid
        if as_json:
            reports.append(
                {
                    "file": str(path),
                    "valid": valid,
                    "pod": pod.name if pod is not None else None,
                    "errors": [d.to_json() for d in errors],
                    "warnings": [d.to_json() for d in warnings],
                }
            )
            continue
        for d in diagnostics:
            out.write(f"{d}\n")
        if valid and pod is not None:
            n = len(pod.spec.containers) + len(pod.spec.init_containers)
            summary = f"valid: pod {pod.name}, {_plural(n, 'container')}"
            if warnings:
                summary += f", {_plural(len(warnings), 'warning')}"
        else:
            summary = _plural(len(errors), "error")
            if warnings:
                summary += f", {_plural(len(warnings), 'warning')}"
        out.write(f"{path}: {summary}\n")
    if as_json:
        json.dump({"valid": all_valid, "files": reports}, out, indent=2)
        out.write("\n")
    return 0 if all_valid else 1
