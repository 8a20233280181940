"""The one top-level error handler every entry point uses.

Expected errors (PodmanSdError) print one line, ``PROGRAM: error: MESSAGE``,
and set a non-zero exit code; anything else is a bug and prints its
traceback only with --debug.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from podman_sd.errors import PodmanSdError


class ExitStatus:
    # Not a dataclass: this module is on the path of every pod start, and
    # dataclasses costs milliseconds to import.
    def __init__(self) -> None:
        self.code = 0


def _print_traceback() -> None:
    import traceback  # only with --debug: it costs milliseconds at every start

    traceback.print_exc()


@contextlib.contextmanager
def handle_errors(program: str, debug: bool = False) -> Iterator[ExitStatus]:
    status = ExitStatus()
    try:
        yield status
    except PodmanSdError as err:
        if debug:
            _print_traceback()
        print(f"{program}: error: {err}", file=sys.stderr, flush=True)
        status.code = err.exit_code
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr, flush=True)
        status.code = 130
    except Exception as err:
        if debug:
            _print_traceback()
        print(
            f"{program}: internal error: {type(err).__name__}: {err} (run with --debug for details)",
            file=sys.stderr,
            flush=True,
        )
        status.code = 70  # EX_SOFTWARE
