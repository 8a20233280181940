"""Fetching images into the store: the code behind ``podman-sd-fetch``.

This package is the only one that reads image sources (local layouts and,
with the registry client, the network). It runs in its own process.
"""
