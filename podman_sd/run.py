"""Running child processes: the one place that calls subprocess.

A failed command becomes a CommandError carrying its quoted command line and
the last line it printed on stderr, fit for a one-line message.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence

from podman_sd.errors import CommandError


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    show_stderr: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run ARGV, capturing stdout (and stderr, unless SHOW_STDERR leaves it
    on ours, e.g. for a child's progress bars on a terminal)."""
    try:
        result = subprocess.run(
            list(argv),
            input=input,
            stdout=subprocess.PIPE,
            stderr=None if show_stderr else subprocess.PIPE,
            env=None if env is None else dict(env),
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise CommandError(f"{shlex.join(argv)}: {argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{shlex.join(argv)}: no answer after {timeout} s") from None
    if result.returncode != 0:
        lines = (result.stderr or b"").decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {result.returncode}"
        raise CommandError(f"{shlex.join(argv)} failed: {why}")
    return result
