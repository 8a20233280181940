"""Images: references, OCI/Docker manifests and configs, and the content store."""
