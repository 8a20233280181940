"""Bad registries and broken connections (issue 4): each gives a one-line
error or a successful retry, and the store never holds an unverified or
partial blob."""

from __future__ import annotations

import contextlib
import json

import pytest

from podman_sd.errors import ImageError
from podman_sd.image.spec import (
    MAX_DOCUMENT_SIZE,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    host_platform,
)
from podman_sd.image.store import Store
from tests.unit.fetch.conftest import assert_store_clean, pull_from
from tests.unit.fetch.fakeregistry import FakeRegistry, Handler, make_image, make_index, sha


def one_line(err: pytest.ExceptionInfo[ImageError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_pull_by_tag(fake: FakeRegistry, store: Store) -> None:
    image = make_image(1000, 300_000, 5)
    fake.add_image("app", "v1", image)
    record = pull_from(fake, "app:v1", store)
    assert record.manifest_digest == image.digest
    assert record.reference == f"{fake.host}/app:v1"
    assert [layer.diff_id for layer in record.layers] == image.diff_ids
    assert store.image(record.reference) == record
    assert_store_clean(store)
    accept = fake.requests_for("/manifests/v1")[0]["Accept"]
    for media_type in (
        MEDIA_OCI_MANIFEST,
        MEDIA_OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ):
        assert media_type in accept


def test_pull_by_digest(fake: FakeRegistry, store: Store) -> None:
    image = make_image(100)
    fake.add_image("app", "v1", image)
    record = pull_from(fake, f"app@{image.digest}", store)
    assert record.manifest_digest == image.digest


def test_wrong_digest_from_the_registry(fake: FakeRegistry, store: Store) -> None:
    image = make_image(10_000)
    fake.add_image("app", "v1", image)
    bad = sha(image.layers[0])

    def hook(handler: Handler, kind: str, ref: str) -> bool:
        if ref != bad:
            return False
        data = bytearray(image.layers[0])
        data[100] ^= 1
        handler.send_body(200, bytes(data))
        return True

    fake.hook = hook
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert f"layer {bad}: content has digest" in one_line(err)
    assert not store.has_blob(bad)
    assert store.images() == {}
    assert_store_clean(store)


def test_truncated_blob_fails_after_retries(fake: FakeRegistry, store: Store) -> None:
    image = make_image(200_000)
    fake.add_image("app", "v1", image)
    blob = image.layers[0]

    def hook(handler: Handler, kind: str, ref: str) -> bool:
        if ref != sha(blob):
            return False
        handler.send_cut(
            blob, len(blob) // 2
        ) if "Range" not in handler.headers else handler.send_body(416, b"")
        return True

    fake.hook = hook
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert "HTTP 416" in one_line(err) or "broke off" in one_line(err)
    assert not store.has_blob(sha(blob))
    assert_store_clean(store)


def test_short_blob_with_a_matching_length_is_refused(fake: FakeRegistry, store: Store) -> None:
    image = make_image(50_000)
    fake.add_image("app", "v1", image)
    blob = image.layers[0]
    fake.blobs[sha(blob)] = blob[:-10]  # the registry itself holds a short blob
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert sha(blob) in one_line(err)
    assert_store_clean(store)


def test_connection_dropped_mid_blob_resumes_with_range(fake: FakeRegistry, store: Store) -> None:
    image = make_image(3_000_000)
    fake.add_image("app", "v1", image)
    blob = image.layers[0]
    cuts: list[int] = []

    def hook(handler: Handler, kind: str, ref: str) -> bool:
        if ref == sha(blob) and not cuts:
            cuts.append(1)
            handler.send_cut(blob, 1_500_000)
            return True
        return False

    fake.hook = hook
    record = pull_from(fake, "app:v1", store)
    assert store.has_blob(record.layers[0].digest)
    ranges = [h.get("Range") for h in fake.requests_for(f"/blobs/{sha(blob)}")]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:-1]) > 0
    assert_store_clean(store)


def test_resume_when_the_registry_ignores_range(fake: FakeRegistry, store: Store) -> None:
    image = make_image(3_000_000)
    fake.add_image("app", "v1", image)
    blob = image.layers[0]
    calls: list[int] = []

    def hook(handler: Handler, kind: str, ref: str) -> bool:
        if ref != sha(blob):
            return False
        calls.append(1)
        if len(calls) == 1:
            handler.send_cut(blob, 1_000_000)
        else:
            handler.send_body(200, blob)  # no Range support: the whole blob again
        return True

    fake.hook = hook
    pull_from(fake, "app:v1", store)
    assert store.has_blob(sha(blob))
    assert_store_clean(store)


def test_500_then_recovery(fake: FakeRegistry, store: Store) -> None:
    image = make_image(1000)
    fake.add_image("app", "v1", image)
    failures = {"manifest": 2, "blob": 2}

    def hook(handler: Handler, kind: str, ref: str) -> bool:
        key = "manifest" if kind == "manifests" else "blob"
        if failures[key]:
            failures[key] -= 1
            handler.error(500 if key == "manifest" else 503, "UNAVAILABLE")
            return True
        return False

    fake.hook = hook
    record = pull_from(fake, "app:v1", store)
    assert record.manifest_digest == image.digest
    assert failures == {"manifest": 0, "blob": 0}


def test_500_forever_gives_up_with_one_line(fake: FakeRegistry, store: Store) -> None:
    def hook(handler: Handler, kind: str, ref: str) -> bool:
        handler.error(500, "UNAVAILABLE")
        return True

    fake.hook = hook
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert "HTTP 500; gave up after 4 attempts" in one_line(err)


def test_oversize_manifest(fake: FakeRegistry, store: Store) -> None:
    big = json.dumps({"mediaType": MEDIA_OCI_MANIFEST, "pad": "x" * MAX_DOCUMENT_SIZE}).encode()
    fake.add_manifest("app", "v1", big, MEDIA_OCI_MANIFEST)
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert "larger than the limit" in one_line(err)


def test_oversize_manifest_without_content_length(fake: FakeRegistry, store: Store) -> None:
    def hook(handler: Handler, kind: str, ref: str) -> bool:
        handler.send_response(200)
        handler.send_header("Content-Type", MEDIA_OCI_MANIFEST)
        handler.end_headers()  # HTTP/1.0: the body ends when the connection closes
        for _ in range(MAX_DOCUMENT_SIZE // 65536 + 2):
            handler.wfile.write(b" " * 65536)
        return True

    fake.hook = hook
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert "larger than the limit" in one_line(err)


def _for_this_host(index: bytes, digest: str) -> bytes:
    os_name, arch = host_platform()
    doc = json.loads(index)
    doc["manifests"][0]["platform"] = {"os": os_name, "architecture": arch}
    doc["manifests"][0]["digest"] = digest
    return json.dumps(doc).encode()


def test_manifest_that_points_at_itself(fake: FakeRegistry, store: Store) -> None:
    # An index cannot hold its own sha256 digest; what a hostile registry
    # can do is answer the entry's digest with the index itself.
    loop = "sha256:" + "0" * 64
    raw = _for_this_host(make_index([(b"{}", "linux", "amd64")]), loop)
    fake.add_manifest("app", "v1", raw, MEDIA_OCI_INDEX)
    fake.manifests[f"app:{loop}"] = (raw, MEDIA_OCI_INDEX)
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert f"manifest: content has digest {sha(raw)}, expected {loop}" in one_line(err)
    assert not store.blobs.exists() or list(store.blobs.iterdir()) == []


def test_index_that_points_at_an_index(fake: FakeRegistry, store: Store) -> None:
    inner = _for_this_host(make_index([(b"{}", "linux", "amd64")]), "sha256:" + "2" * 64)
    outer = _for_this_host(make_index([(b"{}", "linux", "amd64")]), sha(inner))
    fake.add_manifest("app", "inner", inner, MEDIA_OCI_INDEX)
    fake.add_manifest("app", "v1", outer, MEDIA_OCI_INDEX)
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert "points at another index" in one_line(err)


def test_unknown_media_type(fake: FakeRegistry, store: Store) -> None:
    doc = json.dumps({"mediaType": "application/vnd.example.thing+json", "layers": []}).encode()
    fake.add_manifest("app", "v1", doc, "application/vnd.example.thing+json")
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert "unsupported media type 'application/vnd.example.thing+json'" in one_line(err)


def test_schema1_is_refused(fake: FakeRegistry, store: Store) -> None:
    media = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    fake.add_manifest("app", "v1", json.dumps({"schemaVersion": 1}).encode(), media)
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    assert "unsupported media type" in one_line(err)


def test_no_entry_for_this_platform(fake: FakeRegistry, store: Store) -> None:
    image = make_image(10)
    fake.add_image("app", "x", image)
    index = make_index([(image.manifest, "linux", "riscv64"), (image.manifest, "windows", "amd64")])
    fake.add_manifest("app", "v1", index, MEDIA_OCI_INDEX)
    with pytest.raises(ImageError) as err:
        pull_from(fake, "app:v1", store)
    os_name, arch = host_platform()
    assert (
        f"no image for {os_name}/{arch} (the index has linux/riscv64, windows/amd64)"
        in one_line(err)
    )


def test_index_picks_this_platform(fake: FakeRegistry, store: Store) -> None:
    os_name, arch = host_platform()
    mine, other = make_image(100), make_image(200)
    fake.add_image("app", "mine", mine)
    fake.add_image("app", "other", other)
    index = make_index([(other.manifest, "linux", "riscv64"), (mine.manifest, os_name, arch)])
    fake.add_manifest(
        "app", "v1", index, "application/vnd.docker.distribution.manifest.list.v2+json"
    )
    record = pull_from(fake, "app:v1", store)
    assert record.manifest_digest == mine.digest
    assert not store.has_blob(sha(other.layers[0]))


def test_404_names_image_registry_and_what_to_do(fake: FakeRegistry, store: Store) -> None:
    with pytest.raises(ImageError) as err:
        pull_from(fake, "nothing:v1", store)
    text = one_line(err)
    assert f"image {fake.host}/nothing:v1: registry {fake.host}" in text
    assert "not found (HTTP 404) (MANIFEST_UNKNOWN" in text and "check the repository" in text


def test_concurrent_pulls_download_each_blob_once(fake: FakeRegistry, store: Store) -> None:
    import threading

    image = make_image(2_000_000, 1_000_000, 500_000)
    fake.add_image("app", "v1", image)
    results: list[object] = []

    def run() -> None:
        results.append(pull_from(fake, "app:v1", store).manifest_digest)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [image.digest] * 3
    for blob in image.layers:
        assert len(fake.requests_for(f"/blobs/{sha(blob)}")) == 1
    assert_store_clean(store)


def test_a_pull_that_started_beside_another_keeps_its_share(store: Store) -> None:
    """Pull B starts while A runs, A ends, then C starts: C must see B and
    leave B's files in incoming/ alone. (flock(2) drops a lock it fails to
    upgrade; taking shared then trying exclusive lost B's share here, and
    two pulls downloaded the same blob under load.)"""
    from podman_sd.fetch.pull import pulling

    with contextlib.ExitStack() as b:
        with pulling(store):  # A
            b.enter_context(pulling(store))
            partial = store.incoming / "partial-of-b"
            partial.write_bytes(b"half a layer")
        with pulling(store):  # C
            assert partial.exists()
    with pulling(store):  # nobody else now: leftovers of crashed pulls go
        assert not partial.exists()


def test_prune_waits_for_running_pulls(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A running pull's committed blobs are in no image record until it ends:
    `image prune` must not take them from under it."""
    import hashlib
    import threading

    from podman_sd.fetch.pull import pulling
    from podman_sd.image import gc

    monkeypatch.setenv("PODMAN_SD_RUNTIME_DIR", str(store.root / "run"))  # no pods here
    content = b"a layer a pull has just committed"
    digest = f"sha256:{hashlib.sha256(content).hexdigest()}"
    pruned: list[gc.PruneResult] = []
    with pulling(store):
        store.commit_blob(digest, [content])
        pruner = threading.Thread(target=lambda: pruned.append(gc.prune(store)))
        pruner.start()
        pruner.join(timeout=0.5)
        assert pruner.is_alive()  # waiting for the pull
        assert store.has_blob(digest)
    pruner.join(timeout=10)
    # The pull ended without recording an image: now the blob is garbage.
    assert pruned and pruned[0].blobs == (digest,)
