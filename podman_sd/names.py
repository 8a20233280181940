"""systemd unit names for pods and apps.

Pod and app names are Kubernetes DNS labels, which may contain ``-``. In a
slice name ``-`` means hierarchy (``a-b.slice`` sits inside ``a.slice``), so
every name is escaped the way ``systemd-escape`` does before it becomes part
of a unit name: pod ``my-web`` gets ``pod-my\\x2dweb.slice`` and never lands
inside the slice of a pod called ``my``.
"""

from __future__ import annotations

import re
import string

from podman_sd.errors import ManifestError

# A Kubernetes pod name: a DNS-1123 label. Checked before a name from the
# command line is used in any path or unit name (`*` would be a glob there).
_POD_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

_PLAIN = frozenset(string.ascii_letters + string.digits + ":_.")

# All pod slices live under one parent slice, so `systemctl status pod.slice`
# shows every pod and pod-level limits have one obvious home.
PODS_SLICE = "pod.slice"


def is_pod_name(name: str) -> bool:
    return bool(_POD_NAME.match(name))


def check_pod_name(name: str) -> None:
    if not is_pod_name(name):
        raise ManifestError(f"{name!r} is not a pod name (a DNS label: a-z, 0-9 and '-')")


def systemd_escape(name: str) -> str:
    """The result of ``systemd-escape NAME`` (not in --path mode)."""
    out = []
    for index, char in enumerate(name):
        if char == "/":
            out.append("-")
        elif char in _PLAIN and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode())
    return "".join(out)


def pod_service(pod: str) -> str:
    """The unit that runs the pod. Instance names keep the pod name as written."""
    return f"pod@{pod}.service"


def pod_slice(pod: str) -> str:
    return f"pod-{systemd_escape(pod)}.slice"


def app_scope(pod: str, app: str) -> str:
    return f"pod-{systemd_escape(pod)}-{systemd_escape(app)}.scope"
