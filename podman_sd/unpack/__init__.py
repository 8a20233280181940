"""Turn verified OCI layers into overlayfs lower directories, and flatten them.

``unpack_layer`` streams one layer blob (gzip, zstd or plain tar) into its own
directory in overlayfs's format, re-checking both digests on the way and
refusing anything that would write outside that directory. ``render_layers``
flattens a stack of such directories into one plain tree (``podman-sd image
render``).
"""

from podman_sd.unpack.layer import unpack_layer
from podman_sd.unpack.limits import DEFAULT_LIMITS, UnpackLimits
from podman_sd.unpack.render import render_layers
from podman_sd.unpack.streams import MEDIA_TYPES

__all__ = ["DEFAULT_LIMITS", "MEDIA_TYPES", "UnpackLimits", "render_layers", "unpack_layer"]
