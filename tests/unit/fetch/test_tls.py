"""TLS to a registry (issue 4): its own CA from certs.d, host names checked,
the environment's CA bundle playing no part, one SSL context per host."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_mock import MockerFixture

from podman_sd.errors import ImageError
from podman_sd.fetch.auth import AuthFile
from podman_sd.fetch.pull import pull
from podman_sd.fetch.registries import RegistriesConf
from podman_sd.fetch.registry import RegistrySource, TLSAdapters
from podman_sd.image.reference import parse_reference
from podman_sd.image.store import ImageRecord, Store
from tests.system.registry_setup import cert_pem, key_pem, make_cert
from tests.unit.fetch.conftest import FAST
from tests.unit.fetch.fakeregistry import FakeRegistry, make_image, serve


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _key()
    return make_cert("podman-sd unit test CA", key, None, ca=True), key


def _tls_registry(
    tmp_path: Path, ca: tuple[x509.Certificate, rsa.RSAPrivateKey], sans: list[x509.GeneralName]
) -> Iterator[FakeRegistry]:
    key = _key()
    (tmp_path / "server.crt").write_text(
        cert_pem(make_cert("registry", key, ca, ca=False, sans=sans))
    )
    (tmp_path / "server.key").write_text(key_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    yield from serve(FakeRegistry(), context)


@pytest.fixture
def registry(
    tmp_path: Path, ca: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> Iterator[FakeRegistry]:
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    yield from _tls_registry(tmp_path, ca, sans)


@pytest.fixture
def misnamed(
    tmp_path: Path, ca: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> Iterator[FakeRegistry]:
    yield from _tls_registry(tmp_path, ca, [x509.DNSName("registry.example")])


def _certs_d(tmp_path: Path, host: str, ca: x509.Certificate) -> tuple[Path, ...]:
    directory = tmp_path / "certs.d" / host
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_text(cert_pem(ca))
    return (tmp_path / "certs.d",)


def _pull(fake: FakeRegistry, store: Store, certs_dirs: tuple[Path, ...]) -> ImageRecord:
    ref = parse_reference(f"{fake.host}/app:v1")
    auth = AuthFile({}, "/test/auth.json")
    with RegistrySource(ref, RegistriesConf(), auth, FAST, certs_dirs=certs_dirs) as source:
        return pull(source, store, str(ref))


def test_registry_with_its_own_ca_from_certs_d(
    registry: FakeRegistry, ca: tuple[x509.Certificate, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    image = make_image(1000, 2000)
    registry.add_image("app", "v1", image)
    store = Store(tmp_path / "store")
    record = _pull(registry, store, _certs_d(tmp_path, registry.host, ca[0]))
    assert record.manifest_digest == image.digest


def test_unknown_ca_is_refused_whatever_requests_ca_bundle_says(
    registry: FakeRegistry,
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry.add_image("app", "v1", make_image(1000))
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(cert_pem(ca[0]))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with pytest.raises(ImageError, match="TLS verification failed") as err:
        _pull(registry, Store(tmp_path / "store"), ())
    assert f"certs.d/{registry.host}/ca.crt" in str(err.value)


def test_certificate_for_another_name_is_refused(
    misnamed: FakeRegistry, ca: tuple[x509.Certificate, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    misnamed.add_image("app", "v1", make_image(1000))
    with pytest.raises(ImageError, match="TLS verification failed"):
        _pull(misnamed, Store(tmp_path / "store"), _certs_d(tmp_path, misnamed.host, ca[0]))


def test_one_ssl_context_per_host_whatever_the_number_of_layers(
    registry: FakeRegistry,
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
    tmp_path: Path,
    mocker: MockerFixture,
) -> None:
    # Loading CAs costs ~20 ms of CPU with the GIL held: once per host, not
    # once per connection (each layer downloads on its own connection).
    registry.add_image("app", "v1", make_image(1000, 2000, 3000, 4000, 5000))
    contexts = mocker.spy(TLSAdapters, "_context")
    _pull(registry, Store(tmp_path / "store"), _certs_d(tmp_path, registry.host, ca[0]))
    assert contexts.call_count == 1
