"""A small fake OCI registry (http.server on 127.0.0.1 in a thread) for faults.

It serves manifests and blobs from dictionaries, honours Range, can demand
basic or bearer auth, and lets a test replace the answer to any request
with a hook, to send wrong data, cut a connection or fail with a 500.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import ssl
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from podman_sd.image.spec import (
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    host_platform,
)

PATH_RE = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class Image:
    manifest: bytes
    config: bytes
    layers: list[bytes]
    diff_ids: list[str]

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        return {sha(self.config): self.config, **{sha(layer): layer for layer in self.layers}}


def layer(size: int, name: str = "file") -> tuple[bytes, str]:
    """A gzip-compressed tar with one file of SIZE random bytes; (blob, diff id)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    raw = buffer.getvalue()
    return gzip.compress(raw, compresslevel=1), sha(raw)


def make_image(*sizes: int) -> Image:
    os_name, arch = host_platform()
    layers, diff_ids = zip(*(layer(size, f"f{i}") for i, size in enumerate(sizes)), strict=True)
    config = json.dumps(
        {
            "architecture": arch,
            "os": os_name,
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(blob),
                    "size": len(blob),
                }
                for blob in layers
            ],
        }
    ).encode()
    return Image(manifest, config, list(layers), list(diff_ids))


def make_index(entries: list[tuple[bytes, str, str]]) -> bytes:
    """An OCI index of (manifest, os, arch)."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_OCI_MANIFEST,
                    "digest": sha(manifest),
                    "size": len(manifest),
                    "platform": {"os": os_name, "architecture": arch},
                }
                for manifest, os_name, arch in entries
            ],
        }
    ).encode()


Hook = Callable[["Handler", str, str], bool]


@dataclass
class FakeRegistry:
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    hook: Hook | None = None
    basic: tuple[str, str] | None = None
    bearer: tuple[str, str] | None = None  # credentials the token endpoint wants
    token: str = "sesame"
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def add_image(self, repo: str, tag: str, image: Image) -> None:
        self.manifests[f"{repo}:{tag}"] = (image.manifest, MEDIA_OCI_MANIFEST)
        self.manifests[f"{repo}:{image.digest}"] = (image.manifest, MEDIA_OCI_MANIFEST)
        self.blobs.update(image.blobs())

    def add_manifest(self, repo: str, tag: str, data: bytes, media_type: str) -> None:
        self.manifests[f"{repo}:{tag}"] = (data, media_type)
        self.manifests[f"{repo}:{sha(data)}"] = (data, media_type)

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def requests_for(self, fragment: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for path, headers in self.log if fragment in path]


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()
        self.send_body(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _authorized(self) -> bool:
        fake = self.server.fake
        given = self.headers.get("Authorization", "")
        if fake.basic is not None:
            wanted = base64.b64encode(":".join(fake.basic).encode()).decode()
            if given != f"Basic {wanted}":
                self.error(401, "UNAUTHORIZED", {"WWW-Authenticate": 'Basic realm="fake"'})
                return False
        if fake.bearer is not None and given != f"Bearer {fake.token}":
            challenge = (
                f'Bearer realm="http://{fake.host}/token",service="fake",'
                f'scope="repository:{self.path.split("/")[2]}:pull"'
            )
            self.error(401, "UNAUTHORIZED", {"WWW-Authenticate": challenge})
            return False
        return True

    def _token(self) -> None:
        fake = self.server.fake
        assert fake.bearer is not None
        wanted = base64.b64encode(":".join(fake.bearer).encode()).decode()
        if self.headers.get("Authorization") != f"Basic {wanted}":
            self.send_body(401, b"{}")
            return
        self.send_body(200, json.dumps({"token": fake.token}).encode())

    def do_GET(self) -> None:
        fake = self.server.fake
        with fake.lock:
            fake.log.append((self.path, dict(self.headers.items())))
        if self.path.startswith("/token"):
            self._token()
            return
        match = PATH_RE.match(self.path)
        if match is None:
            self.error(404, "NAME_UNKNOWN")
            return
        repo, kind, ref = match["repo"], match["kind"], match["ref"]
        if fake.hook is not None and fake.hook(self, kind, ref):
            return
        if not self._authorized():
            return
        if kind == "manifests":
            found = fake.manifests.get(f"{repo}:{ref}")
            if found is None:
                self.error(404, "MANIFEST_UNKNOWN")
                return
            data, media_type = found
            self.send_body(
                200, data, {"Content-Type": media_type, "Docker-Content-Digest": sha(data)}
            )
            return
        blob = fake.blobs.get(ref)
        if blob is None:
            self.error(404, "BLOB_UNKNOWN")
            return
        self.send_blob(blob)

    def send_blob(self, blob: bytes) -> None:
        start = 0
        match = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if match:
            start = int(match[1])
            self.send_body(
                206, blob[start:], {"Content-Range": f"bytes {start}-{len(blob) - 1}/{len(blob)}"}
            )
            return
        self.send_body(200, blob, {"Accept-Ranges": "bytes"})

    def send_cut(self, blob: bytes, after: int) -> None:
        """Announce all of BLOB, send AFTER bytes, close the connection."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob[:after])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeRegistry


def serve(fake: FakeRegistry, context: ssl.SSLContext | None = None) -> Iterator[FakeRegistry]:
    server = _Server(("127.0.0.1", 0), Handler)
    server.fake = fake
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    fake.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
