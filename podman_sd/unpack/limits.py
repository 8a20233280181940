"""Bounds on what one layer may make us read, allocate and write.

A layer is a tar archive from a stranger; every quantity it controls is
bounded here so that a hostile one fails fast instead of filling the disk or
memory. The defaults are generous for real images (the largest public layers
are a few GiB with a few hundred thousand entries).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class UnpackLimits:
    """Limits applied while one layer is unpacked.

    ``max_expanded_bytes`` bounds the uncompressed tar stream and, separately,
    the sum of the regular files written. ``max_ratio`` bounds uncompressed to
    compressed bytes once ``ratio_floor_bytes`` have come out: gzip cannot
    exceed about 1032:1, so the default only ever stops zstd (whose zero runs
    reach 32768:1). ``max_entries`` counts tar entries plus the parent
    directories an archive makes us create implicitly. ``max_header_bytes``
    bounds one PAX or GNU long-name header (tarfile holds it in memory).
    Character and block devices are refused unless ``allow_devices``: images
    rarely ship them and the runtime gives every app a private ``/dev``.
    Whiteouts and FIFOs are always allowed.
    """

    max_expanded_bytes: int = 32 * GiB
    max_ratio: int = 2000
    ratio_floor_bytes: int = 64 * MiB
    max_entries: int = 500_000
    max_path_bytes: int = 4096  # PATH_MAX, include/uapi/linux/limits.h
    max_xattr_bytes: int = 64 * KiB  # XATTR_SIZE_MAX, include/uapi/linux/limits.h
    max_header_bytes: int = 1 * MiB
    allow_devices: bool = False

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "int" and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"UnpackLimits.{field.name} must be a positive integer")


DEFAULT_LIMITS = UnpackLimits()
