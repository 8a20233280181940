"""podman-sd: Kubernetes pod manifests run as native systemd units."""

__version__ = "0.1.0"
