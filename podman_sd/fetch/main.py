"""``podman-sd-fetch``: the helper that fetches and verifies images.

    podman-sd-fetch pull [--json] REFERENCE

It is the only program that reads image sources. It prints the image record
as JSON on stdout (for the launcher and ``podman-sd image pull``) and one
line per pulled image to the journal, where its ``_UID`` and
``_CAP_EFFECTIVE`` show what privileges it ran with.
"""

from __future__ import annotations

import argparse
import json
import sys

from podman_sd import paths
from podman_sd.cli_errors import handle_errors
from podman_sd.errors import ImageError
from podman_sd.fetch.oci_layout import OCILayoutSource
from podman_sd.fetch.pull import pull
from podman_sd.fetch.source import ImageSource
from podman_sd.image.reference import ImageRef, Transport, parse_reference
from podman_sd.image.store import ImageRecord, Store


def source_for(ref: ImageRef) -> ImageSource:
    if ref.transport is Transport.OCI:
        return OCILayoutSource(ref)
    raise ImageError(f"image {ref}: the {ref.transport.value} transport is not supported yet")


def log_pull(record: ImageRecord) -> None:
    try:
        from systemd import journal
    except ImportError:
        return
    journal.send(
        f"pulled {record.reference} {record.manifest_digest}",
        SYSLOG_IDENTIFIER="podman-sd-fetch",
        IMAGE_NAME=record.reference,
        IMAGE_DIGEST=record.manifest_digest,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="podman-sd-fetch", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    pull_parser = sub.add_parser("pull", help="fetch and verify an image into the store")
    pull_parser.add_argument("--json", action="store_true", help="print the image record as JSON")
    pull_parser.add_argument("reference")
    args = parser.parse_args(argv)
    with handle_errors("podman-sd-fetch", args.debug) as status:
        ref = parse_reference(args.reference)
        store = Store(paths.state_dir())
        record = pull(source_for(ref), store, str(ref))
        log_pull(record)
        if args.json:
            json.dump(record.to_json(), sys.stdout)
            sys.stdout.write("\n")
        else:
            print(f"{record.reference} {record.manifest_digest}")
    return status.code


if __name__ == "__main__":
    sys.exit(main())
