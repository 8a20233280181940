"""What `image prune` keeps: layers recorded by pods and image mounts, and
nothing a pod is finding while prune decides."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from podman_sd import paths
from podman_sd.image import gc, layer_use
from podman_sd.image.store import Store


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("PODMAN_SD_RUNTIME_DIR", str(tmp_path / "run"))
    return Store(tmp_path / "state").create()


def unpacked_layer(store: Store, name: str) -> Path:
    layer = store.layers / name
    (layer / "etc").mkdir(parents=True)
    return layer


def test_in_use_reads_the_records_of_pods_and_mounts(store: Store) -> None:
    one, two, three = (unpacked_layer(store, name) for name in ("a1", "b2", "c3"))
    layer_use.pod_record("web").parent.mkdir(parents=True)
    layer_use.record(layer_use.pod_record("web"), [one, two])
    mount = paths.runtime_dir() / "mounts" / "0123"
    mount.mkdir(parents=True)
    layer_use.record(layer_use.mount_record(mount), [three])
    assert layer_use.in_use() == {"a1", "b2", "c3"}
    assert gc.prune(store).layers == ()
    layer_use.mount_record(mount).unlink()
    assert gc.prune(store).layers == ("sha256:c3",)


def test_prune_waits_while_a_pod_finds_and_records_its_layers(store: Store) -> None:
    layer = unpacked_layer(store, "d4")
    pruned: list[gc.PruneResult] = []
    with layer_use.recording(store.root):
        pruner = threading.Thread(target=lambda: pruned.append(gc.prune(store)))
        pruner.start()
        pruner.join(timeout=0.5)
        assert pruner.is_alive()  # it must not decide while the pod looks
        assert layer.is_dir()
        layer_use.pod_record("web").parent.mkdir(parents=True)
        layer_use.record(layer_use.pod_record("web"), [layer])
    pruner.join(timeout=10)
    assert pruned == [gc.PruneResult(layers=(), blobs=())]
    assert layer.is_dir()
