"""What goes wrong inside a layer, before it is named.

The readers and the extractor raise these without knowing which layer or
entry they are working on; ``layer.unpack_layer`` adds both and turns them
into the public errors of ``podman_sd.errors``.
"""

from __future__ import annotations


class LayerFault(Exception):
    """The layer's content is malformed or unsafe."""


class LimitFault(LayerFault):
    """The layer exceeds one of the ``UnpackLimits``."""


class NotADirectoryFault(LayerFault):
    """A path goes through something that is not a directory (or is a symlink)."""
