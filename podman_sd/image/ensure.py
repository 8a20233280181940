"""Making sure a pod's image is in the store, honouring imagePullPolicy.

Pulling is never done in this process: it runs ``podman-sd-fetch``, the
separate helper that alone reads image sources, and reads back its result.
"""

from __future__ import annotations

import json
import os
import sys

from podman_sd.errors import ImageError
from podman_sd.image.reference import parse_reference
from podman_sd.image.store import ImageRecord, Store
from podman_sd.manifest.model import PullPolicy
from podman_sd.run import run


def fetch_command() -> list[str]:
    """podman-sd-fetch beside the running podman-sd, or the module in a checkout."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "podman-sd-fetch")
    if os.access(beside, os.X_OK):
        return [beside]
    return [sys.executable, "-m", "podman_sd.fetch.main"]


def pull_with_helper(reference: str) -> ImageRecord:
    result = run([*fetch_command(), "pull", "--json", reference])
    return ImageRecord.from_json(json.loads(result.stdout))


def ensure_image(store: Store, image: str, policy: PullPolicy) -> ImageRecord:
    reference = str(parse_reference(image))
    present = store.image(reference)
    if policy is PullPolicy.NEVER:
        if present is None:
            raise ImageError(f"image {image} is not in the store and imagePullPolicy is Never")
        return present
    if policy is PullPolicy.IF_NOT_PRESENT and present is not None:
        return present
    return pull_with_helper(reference)
