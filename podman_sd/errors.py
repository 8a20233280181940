"""The typed errors of podman-sd.

Every expected failure is one of these. Only the command-line entry points
turn them into a one-line message and an exit code (see ``cli.py``); code
below them raises and never prints.
"""

from __future__ import annotations


class PodmanSdError(Exception):
    """An expected failure with a message fit for one line of output."""

    exit_code = 1


class ManifestError(PodmanSdError):
    """A pod manifest is malformed or uses something unsupported."""


class ImageError(PodmanSdError):
    """An image cannot be found, read or verified."""


class StoreError(PodmanSdError):
    """The content store is inconsistent or cannot be written."""


class UnpackError(PodmanSdError):
    """A layer cannot be unpacked safely."""


class RuntimeSetupError(PodmanSdError):
    """A pod or app could not be set up (namespaces, mounts, scopes)."""


class SystemdError(PodmanSdError):
    """systemd refused a request made over D-Bus."""


class CommandError(PodmanSdError):
    """A child process failed; the message carries its quoted command line."""


class LayerDigestError(UnpackError):
    """A layer's bytes do not match its expected digest or diff ID."""


class LayerLimitError(UnpackError):
    """A layer exceeds a bound on size, expansion ratio, entries or headers."""


class TrustError(ImageError):
    """The trust policy refuses an image, or cannot be read or applied."""


class PolicyError(TrustError):
    """A trust policy or signature-location configuration is malformed or unsupported."""
