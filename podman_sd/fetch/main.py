"""``podman-sd-fetch``: the helper that fetches and verifies images.

    podman-sd-fetch pull [--json] REFERENCE

It is the only program that reads image sources. The launcher and
``podman-sd image pull`` start it as a sandboxed transient service under its
own unprivileged user (see ``podman_sd.image.ensure``). It prints the image
record as JSON on stdout and one line per pulled image to the journal, where
its ``_UID`` and ``_CAP_EFFECTIVE`` show what privileges it ran with. On a
terminal it draws a progress bar per layer on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO, cast

from podman_sd import paths
from podman_sd.cli_errors import handle_errors
from podman_sd.errors import ImageError
from podman_sd.fetch.auth import AuthFile, load_auth_file, read_auth_stream
from podman_sd.fetch.oci_layout import OCILayoutSource
from podman_sd.fetch.pull import Progress, pull
from podman_sd.fetch.registries import RegistriesConf, candidates, load_registries_conf
from podman_sd.fetch.source import ImageSource
from podman_sd.image.reference import ImageRef, Transport
from podman_sd.image.store import ImageRecord, Store
from podman_sd.trust.verify import default_signature_source, describe, policy_verifier

if TYPE_CHECKING:
    from podman_sd.trust.source import SigstoreSource


@contextlib.contextmanager
def source_for(
    ref: ImageRef, conf: RegistriesConf | None = None, auth: AuthFile | None = None
) -> Iterator[ImageSource]:
    if ref.transport is Transport.OCI:
        yield OCILayoutSource(ref)
    elif ref.transport is Transport.OCI_ARCHIVE:
        from podman_sd.fetch.oci_archive import OCIArchiveSource

        yield OCIArchiveSource(ref)
    else:
        # requests is imported only for registries (tens of milliseconds).
        from podman_sd.fetch.registry import RegistrySource

        conf = conf or load_registries_conf()
        with RegistrySource(ref, conf, auth or load_auth_file()) as source:
            yield source


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


class TerminalProgress:
    """A bar per layer, redrawn in place at most ten times a second."""

    WIDTH = 30

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._blobs: dict[str, tuple[int, int]] = {}
        self._drawn = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def update(self, digest: str, done: int, total: int) -> None:
        with self._lock:
            self._blobs[digest] = (done, total)
            now = time.monotonic()
            if done < total and now - self._last < 0.1:
                return
            self._last = now
            self._draw()

    def _draw(self) -> None:
        lines = []
        for digest, (done, total) in self._blobs.items():
            filled = self.WIDTH * done // total if total else self.WIDTH
            bar = "#" * filled + "." * (self.WIDTH - filled)
            lines.append(f"{digest[7:19]} [{bar}] {_size(done)} / {_size(total)}")
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self._out.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
        self._out.flush()
        self._drawn = len(lines)


def log_pull(record: ImageRecord) -> None:
    try:
        from systemd import journal
    except ImportError:
        return
    journal.send(
        f"pulled {record.reference} {record.manifest_digest}; {describe(record.verification)}",
        SYSLOG_IDENTIFIER="podman-sd-fetch",
        IMAGE_NAME=record.reference,
        IMAGE_DIGEST=record.manifest_digest,
    )


def pull_reference(
    text: str, store: Store, progress: Progress | None = None, auth: AuthFile | None = None
) -> ImageRecord:
    """Pull what the user wrote; a short name is tried in each search registry."""
    conf = load_registries_conf()
    refs = candidates(text, conf)
    errors: list[str] = []
    for ref in refs:
        try:
            with source_for(ref, conf, auth) as source:
                # Registry sources also carry cosign attachments; every
                # source gets the lookaside stores for GPG signatures.
                sigstore = (
                    cast("SigstoreSource", source) if ref.transport is Transport.DOCKER else None
                )
                verify = policy_verifier(default_signature_source(sigstore))
                return pull(source, store, str(ref), verify, progress=progress)
        except ImageError as err:
            if len(refs) == 1:
                raise
            errors.append(str(err))
    raise ImageError(f"image {text}: not pulled from any search registry: {'; '.join(errors)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="podman-sd-fetch", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    pull_parser = sub.add_parser("pull", help="fetch and verify an image into the store")
    pull_parser.add_argument("--json", action="store_true", help="print the image record as JSON")
    pull_parser.add_argument(
        "--auth-stdin", action="store_true", help="read auth.json's content from stdin"
    )
    pull_parser.add_argument("reference")
    args = parser.parse_args(argv)
    with handle_errors("podman-sd-fetch", args.debug) as status:
        store = Store(paths.state_dir())
        progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
        auth = read_auth_stream(sys.stdin.buffer) if args.auth_stdin else None
        record = pull_reference(args.reference, store, progress, auth)
        log_pull(record)
        if args.json:
            json.dump(record.to_json(), sys.stdout)
            sys.stdout.write("\n")
        else:
            print(f"{record.reference} {record.manifest_digest}")
    return status.code


if __name__ == "__main__":
    sys.exit(main())
