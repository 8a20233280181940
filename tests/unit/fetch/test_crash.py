"""A pull killed at any moment leaves the store consistent (issue 4).

The helper runs as its own process and is killed with SIGKILL while a layer
is half downloaded: every blob in the store still matches its name, the
index does not name the half-pulled image, and the next pull removes what
the dead one left in ``incoming/`` and completes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from podman_sd.image.store import Store
from tests.testhost import REPO
from tests.unit.fetch.conftest import assert_store_clean, pull_from
from tests.unit.fetch.fakeregistry import FakeRegistry, Handler, make_image, sha


def stall(fake: FakeRegistry, digest: str, release: threading.Event) -> None:
    """Serve half of blob DIGEST, then hold the connection until RELEASE."""
    blob = fake.blobs[digest]

    def hook(handler: Handler, kind: str, ref: str) -> bool:
        if kind != "blobs" or ref != digest or release.is_set():
            return False
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(blob)))
        handler.end_headers()
        handler.wfile.write(blob[: len(blob) // 2])
        handler.wfile.flush()
        release.wait(30)
        handler.close_connection = True
        return True

    fake.hook = hook


def start_helper(
    tmp_path: Path, store: Store, reference: str, host: str
) -> subprocess.Popen[bytes]:
    config = tmp_path / "etc"
    config.mkdir(exist_ok=True)
    (config / "registries.conf").write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    (config / "policy.json").write_text(
        json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
    )
    env = {
        **os.environ,
        "PODMAN_SD_STATE_DIR": str(store.root),
        "PODMAN_SD_CONFIG_DIR": str(config),
        "PYTHONPATH": str(REPO),
    }
    argv = [sys.executable, "-m", "podman_sd.fetch.main", "pull", "--auth-stdin", reference]
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def partial_files(store: Store) -> list[Path]:
    if not store.incoming.is_dir():
        return []
    return [p for p in store.incoming.iterdir() if p.name.startswith("blob-") and p.stat().st_size]


def committed(store: Store) -> set[str]:
    return {f"sha256:{p.name}" for p in store.blobs.iterdir()} if store.blobs.is_dir() else set()


@pytest.mark.parametrize("moment", ["first layer half done", "other blobs committed"])
def test_a_killed_pull_leaves_the_store_consistent(
    fake: FakeRegistry, tmp_path: Path, moment: str
) -> None:
    # Over two of the 1 MiB chunks the helper writes: half a layer reaches the disk.
    image = make_image(2_500_000, 300_000, 2_500_000)
    fake.add_image("app", "v1", image)
    layers = [sha(layer) for layer in image.layers]
    stalled = layers[0] if moment == "first layer half done" else layers[-1]
    release = threading.Event()
    stall(fake, stalled, release)
    store = Store(tmp_path / "store")
    helper = start_helper(tmp_path, store, f"{fake.host}/app:v1", fake.host)
    try:
        wait_until(lambda: bool(partial_files(store)))
        if moment == "other blobs committed":
            # (The config and the manifest are committed after all layers.)
            wait_until(lambda: set(layers[:-1]) <= committed(store))
        helper.send_signal(signal.SIGKILL)
        helper.wait(10)
    finally:
        release.set()
        if helper.poll() is None:
            helper.kill()
            helper.wait()
        assert helper.stderr is not None
        helper.stderr.close()

    # What the dead pull left: only verified blobs, no index entry, a
    # partial file in incoming/ (it was killed mid-layer).
    for digest in committed(store):
        data = store.blob_path(digest).read_bytes()
        assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest
    assert stalled not in committed(store)
    assert store.images() == {}
    assert partial_files(store)

    record = pull_from(fake, "app:v1", store)
    assert record.manifest_digest == image.digest
    assert store.image(record.reference) == record
    assert_store_clean(store)  # incoming/ emptied, every blob verified
