from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from podman_sd.fetch.auth import AuthFile, Credentials
from podman_sd.fetch.pull import pull
from podman_sd.fetch.registries import Endpoint, RegistriesConf, RegistryEntry
from podman_sd.fetch.registry import RegistrySource, Settings
from podman_sd.image.reference import parse_reference
from podman_sd.image.store import ImageRecord, Store
from tests.unit.fetch.fakeregistry import FakeRegistry, serve

FAST = Settings(connect_timeout=2, read_timeout=2, retries=3, backoff=0.01)


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    yield from serve(FakeRegistry())


def insecure(host: str) -> RegistriesConf:
    return RegistriesConf(registries=(RegistryEntry(prefix=host, location=host, insecure=True),))


def pull_from(
    fake: FakeRegistry,
    name: str,
    store: Store,
    *,
    conf: RegistriesConf | None = None,
    credentials: Credentials | None = None,
    settings: Settings = FAST,
) -> ImageRecord:
    ref = parse_reference(f"{fake.host}/{name}")
    auth = AuthFile({fake.host: credentials} if credentials else {}, "/test/auth.json")
    with RegistrySource(ref, conf or insecure(fake.host), auth, settings, certs_dirs=()) as source:
        return pull(source, store, str(ref))


def assert_store_clean(store: Store) -> None:
    """Every blob matches its name, nothing half-written is left."""
    if store.blobs.exists():
        for blob in store.blobs.iterdir():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    if store.incoming.exists():
        assert list(store.incoming.iterdir()) == []


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


__all__ = ["Endpoint", "assert_store_clean", "insecure", "pull_from"]
