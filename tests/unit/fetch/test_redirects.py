"""Blobs served from elsewhere: Docker Hub, GHCR and Quay answer a blob GET
with a redirect to a CDN or object store. The download follows it, and the
registry's credentials stay with the registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podman_sd.fetch.auth import Credentials
from podman_sd.image.store import Store
from tests.unit.fetch.conftest import assert_store_clean, pull_from
from tests.unit.fetch.fakeregistry import FakeRegistry, Handler, make_image, serve


@pytest.fixture
def cdn() -> Iterator[FakeRegistry]:
    yield from serve(FakeRegistry())


def test_blobs_redirected_to_another_host_without_the_credentials(
    fake: FakeRegistry, cdn: FakeRegistry, store: Store
) -> None:
    image = make_image(1000, 200_000)
    fake.add_image("app", "v1", image)
    fake.basic = ("puller", "s3cret")
    cdn.blobs.update(image.blobs())

    def redirect(handler: Handler, kind: str, ref: str) -> bool:
        if kind != "blobs":
            return False
        if handler._authorized():
            handler.send_response(307)
            handler.send_header("Location", f"http://{cdn.host}/v2/storage/blobs/{ref}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        return True

    fake.hook = redirect
    record = pull_from(fake, "app:v1", store, credentials=Credentials("puller", "s3cret"))
    assert record.manifest_digest == image.digest
    assert_store_clean(store)
    served = cdn.requests_for("/blobs/")
    assert len(served) == len(image.blobs())  # the config and the layers
    assert all("Authorization" not in headers for headers in served)
