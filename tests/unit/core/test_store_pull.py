"""The store and a pull from an OCI layout built by umoci (a tool not ours)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from podman_sd.errors import ImageError, StoreError
from podman_sd.fetch.oci_layout import OCILayoutSource
from podman_sd.fetch.pull import pull
from podman_sd.image.reference import parse_reference
from podman_sd.image.store import Store


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("layout")
    path = base / "img"
    bundle = base / "bundle"
    subprocess.run(["umoci", "init", "--layout", str(path)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{path}:v1"], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{path}:v1", str(bundle)], check=True)
    (bundle / "rootfs/hello").write_text("hello\n")
    subprocess.run(["umoci", "repack", "--image", f"{path}:v1", str(bundle)], check=True)
    return path


def test_commit_blob_verifies_and_renames(tmp_path: Path) -> None:
    store = Store(tmp_path).create()
    data = b"content"
    store.commit_blob(sha(data), iter([data]), len(data))
    assert store.read_blob(sha(data)) == data
    with pytest.raises(StoreError, match="content has digest"):
        store.commit_blob(sha(b"other"), iter([data]))
    with pytest.raises(StoreError, match="more data than"):
        store.commit_blob(sha(b"abc"), iter([b"abcd"]), 3)
    assert not store.has_blob(sha(b"other"))
    assert list(store.incoming.iterdir()) == []


def test_pull_from_oci_layout(layout: Path, tmp_path: Path) -> None:
    ref = parse_reference(f"oci:{layout}:v1")
    store = Store(tmp_path / "store")
    record = pull(OCILayoutSource(ref), store, str(ref))
    assert store.image(str(ref)) == record
    assert len(record.layers) == 1
    for digest in (record.manifest_digest, record.config_digest, record.layers[0].digest):
        assert sha(store.read_blob(digest)) == digest


def test_unknown_tag_lists_the_tags(layout: Path, tmp_path: Path) -> None:
    ref = parse_reference(f"oci:{layout}:nope")
    with pytest.raises(ImageError, match=r"no tag 'nope' in the layout \(tags: v1\)"):
        pull(OCILayoutSource(ref), Store(tmp_path), str(ref))


def test_corrupt_layer_leaves_nothing_in_the_store(layout: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(layout), str(copy)], check=True)
    index = json.loads((copy / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((copy / "blobs/sha256" / manifest_digest[7:]).read_bytes())
    layer = copy / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(layer.read_bytes())
    data[-1] ^= 0xFF
    layer.write_bytes(bytes(data))
    ref = parse_reference(f"oci:{copy}:v1")
    store = Store(tmp_path / "store")
    with pytest.raises(ImageError, match=r"layer sha256:.*content has digest"):
        pull(OCILayoutSource(ref), store, str(ref))
    assert store.images() == {}
    assert list(store.blobs.iterdir()) == []
    assert list(store.incoming.iterdir()) == []


def test_refusal_by_the_verifier_commits_nothing(layout: Path, tmp_path: Path) -> None:
    ref = parse_reference(f"oci:{layout}:v1")
    store = Store(tmp_path / "store")

    def refuse(reference: str, digest: str) -> dict[str, str]:
        raise ImageError(f"image {reference}: rejected by policy")

    with pytest.raises(ImageError, match="rejected by policy"):
        pull(OCILayoutSource(ref), store, str(ref), verify=refuse)
    assert not store.blobs.exists() or list(store.blobs.iterdir()) == []


def test_not_a_layout(tmp_path: Path) -> None:
    ref = parse_reference(f"oci:{tmp_path}:v1")
    with pytest.raises(ImageError, match="does not exist"):
        pull(OCILayoutSource(ref), Store(tmp_path / "s"), str(ref))


@pytest.mark.parametrize(
    "index",
    [b"[]", b'{"images": []}', b'{"images": {"x": 1}}', b'{"images": {"x": {"reference": "x"}}}'],
)
def test_a_damaged_image_index_is_one_clear_error(tmp_path: Path, index: bytes) -> None:
    """The unprivileged helper writes the index: valid JSON of the wrong
    shape must be an error naming the file, not a traceback in root's tools."""
    store = Store(tmp_path).create()
    store.index_path.write_bytes(index)
    with pytest.raises(StoreError, match=r"images\.json: corrupt image index \("):
        store.images()
