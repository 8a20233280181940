"""The ``podman-sd`` entry point, with a short way in for ``launch``.

``podman-sd launch NAME`` is the main process of every ``pod@NAME.service``
and so on the path of every ``systemctl start``: it skips argparse and the
command-line module (several milliseconds of imports) and goes straight to
the launcher, with a forked worker loading pydbus in parallel
(``systemd/worker.py``). Everything else goes through ``cli.main``.
"""

from __future__ import annotations

import gc
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "launch":
        # A start allocates little but module objects, which live until the
        # launcher hands over to the supervisor (exec) or the worker exits;
        # the cyclic collector would only walk them over and over while they
        # load (~3 ms of pydbus's import). A start that has to compile its
        # plan turns it back on (launcher.compile_from_manifest).
        gc.disable()
        # First thing: a worker that loads the D-Bus library meanwhile.
        from podman_sd.systemd.worker import SystemdWorker

        worker = SystemdWorker()
        from podman_sd.cli_errors import handle_errors
        from podman_sd.launcher import launch

        with handle_errors("podman-sd") as status:
            # On success it becomes the supervisor and never returns; it
            # returns when a stop request ended the start.
            launch(args[1], worker)
        worker.close()
        return status.code
    from podman_sd.cli import main as cli_main

    return cli_main(args)
