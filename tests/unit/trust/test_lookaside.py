"""containers-registries.d(5) configuration and lookaside reading (file://
and http:// from a server on loopback)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from podman_sd.errors import PolicyError, TrustError
from podman_sd.image.reference import parse_reference
from podman_sd.trust import lookaside
from podman_sd.trust.lookaside import (
    LookasideSignatures,
    load_registries_d,
    registries_d_dirs,
    signature_url,
)

DIGEST = "sha256:" + "ab" * 32


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_url_layout() -> None:
    ref = parse_reference("registry.example.com:5000/team/app:1.0")
    url = signature_url("https://sigs.example.com/store/", ref, DIGEST, 2)
    assert url == f"https://sigs.example.com/store/team/app@sha256={'ab' * 32}/signature-2"
    busybox = parse_reference("busybox")
    assert signature_url("file:///s", busybox, DIGEST, 1).startswith("file:///s/library/busybox@")


def test_scopes_most_specific_first(tmp_path: Path) -> None:
    folder = tmp_path / "registries.d"
    write(folder, "default.yaml", "default-docker:\n  lookaside: file:///default\n")
    write(
        folder,
        "example.yaml",
        """
docker:
  registry.example.com:
    lookaside: https://host.example/sigs
  registry.example.com/team:
    sigstore: file:///team
    lookaside-staging: file:///staging
  registry.example.com/team/app:
    use-sigstore-attachments: true
  registry.example.com/team/app:1.0:
    lookaside: file:///tagged
""",
    )
    write(folder, "ignored.yml", "nonsense: [")
    config = load_registries_d([folder])

    def url_of(image: str) -> str | None:
        entry = config.lookaside_for(parse_reference(image))
        return entry.url if entry else None

    assert url_of("registry.example.com/team/app:1.0") == "file:///tagged"
    # An entry without a lookaside URL falls through to the next scope.
    assert url_of("registry.example.com/team/app:2.0") == "file:///team"
    assert url_of("registry.example.com/other/app") == "https://host.example/sigs"
    assert url_of("quay.io/x/y") == "file:///default"
    assert url_of(f"oci:{tmp_path}") is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("docker: [1]\n", "docker: must be a mapping"),
        ("unknown: {}\n", "unknown: unknown key"),
        ("docker:\n  quay.io:\n    lookasid: file:///x\n", "docker.quay.io.lookasid: unknown key"),
        ("docker:\n  quay.io:\n    lookaside: ftp://x/y\n", "not a file:///PATH"),
        ("docker:\n  quay.io:\n    lookaside: file://relative\n", "not a file:///PATH"),
        ("docker: [\n", "not valid YAML"),
        ("- 1\n", "must be a mapping"),
    ],
)
def test_configuration_errors_name_file_and_key(tmp_path: Path, text: str, why: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(PolicyError) as info:
        load_registries_d([tmp_path])
    assert str(path) in str(info.value)
    assert why in str(info.value)


def test_a_scope_configured_twice_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "docker:\n  quay.io:\n    lookaside: file:///a\n")
    write(tmp_path, "b.yaml", "docker:\n  quay.io:\n    lookaside: file:///b\n")
    with pytest.raises(PolicyError, match="already configured in"):
        load_registries_d([tmp_path])


def test_our_folder_else_the_containers_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODMAN_SD_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(lookaside, "CONTAINERS_REGISTRIES_D", tmp_path / "containers")
    assert registries_d_dirs() == [tmp_path / "containers"]
    (tmp_path / "registries.d").mkdir()
    assert registries_d_dirs() == [tmp_path / "registries.d"]


def populate(store: Path, repo: str, count: int) -> None:
    folder = store / f"{repo}@sha256={'ab' * 32}"
    folder.mkdir(parents=True)
    for index in range(1, count + 1):
        (folder / f"signature-{index}").write_bytes(f"sig {index}".encode())
    # A gap: signature-(count+2) is never read.
    (folder / f"signature-{count + 2}").write_bytes(b"unreachable")


def source_for(tmp_path: Path, url: str) -> LookasideSignatures:
    write(
        tmp_path / "registries.d",
        "x.yaml",
        f"docker:\n  registry.example.com:\n    lookaside: {url}\n",
    )
    return LookasideSignatures(load_registries_d([tmp_path / "registries.d"]))


def test_file_lookaside_reads_until_the_first_missing(tmp_path: Path) -> None:
    store = tmp_path / "sig store"
    populate(store, "team/app", 2)
    source = source_for(tmp_path, f"file://{store.as_posix().replace(' ', '%20')}")
    ref = parse_reference("registry.example.com/team/app:1.0")
    assert source.simple_signatures(ref, DIGEST) == [b"sig 1", b"sig 2"]
    assert source.simple_signatures(ref, "sha256:" + "cd" * 32) == []
    assert source.simple_signatures(parse_reference("quay.io/team/app"), DIGEST) == []
    assert source.sigstore_signatures(DIGEST) == []


def test_oversized_signature_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    populate(store, "team/app", 1)
    monkeypatch.setattr(lookaside, "MAX_SIGNATURE_SIZE", 3)
    source = source_for(tmp_path, f"file://{store}")
    with pytest.raises(TrustError, match="larger than 3 bytes"):
        source.simple_signatures(parse_reference("registry.example.com/team/app:1.0"), DIGEST)


@pytest.fixture
def http_store(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    store = tmp_path / "www"
    store.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if "forbidden" in self.path:
                self.send_error(403)
                return
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(store)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_lookaside(tmp_path: Path, http_store: tuple[str, Path]) -> None:
    url, store = http_store
    populate(store / "sigs", "team/app", 3)
    source = source_for(tmp_path, f"{url}/sigs")
    ref = parse_reference("registry.example.com/team/app:1.0")
    assert source.simple_signatures(ref, DIGEST) == [b"sig 1", b"sig 2", b"sig 3"]
    assert source.simple_signatures(ref, "sha256:" + "cd" * 32) == []


def test_http_errors_are_refusals(tmp_path: Path, http_store: tuple[str, Path]) -> None:
    url, _ = http_store
    source = source_for(tmp_path, f"{url}/forbidden")
    with pytest.raises(TrustError, match="HTTP 403"):
        source.simple_signatures(parse_reference("registry.example.com/team/app:1.0"), DIGEST)
