"""registries.conf, auth.json and oci-archive parsing."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest

from podman_sd.errors import ImageError
from podman_sd.fetch.auth import parse_auth_file
from podman_sd.fetch.oci_archive import scan_archive
from podman_sd.fetch.registries import candidates, is_unqualified, parse_registries_conf
from podman_sd.image.reference import parse_reference

CONF = """
unqualified-search-registries = ["reg.example:5000", "docker.io"]

[[registry]]
prefix = "docker.io/library"
location = "cache.example/hub"
[[registry.mirror]]
location = "mirror.example"
insecure = true

[[registry]]
location = "evil.example"
blocked = true
"""


def test_registries_conf_mirrors_then_registry() -> None:
    conf = parse_registries_conf(CONF, "r.conf")
    endpoints = conf.endpoints(parse_reference("docker.io/library/busybox:1"))
    assert [(e.host, e.insecure, repo) for e, repo in endpoints] == [
        ("mirror.example", True, "busybox"),
        ("cache.example", False, "hub/busybox"),
    ]
    plain = conf.endpoints(parse_reference("quay.io/x/y"))
    assert [(e.host, repo) for e, repo in plain] == [("quay.io", "x/y")]


def test_blocked_registry() -> None:
    conf = parse_registries_conf(CONF, "r.conf")
    with pytest.raises(ImageError, match=r"blocked in r\.conf"):
        conf.endpoints(parse_reference("evil.example/x:1"))


def test_short_names_use_the_search_registries() -> None:
    conf = parse_registries_conf(CONF, "r.conf")
    assert is_unqualified("busybox") and is_unqualified("team/app:1")
    assert not is_unqualified("127.0.0.1:5000/app") and not is_unqualified("localhost/app")
    assert [str(r) for r in candidates("busybox:1", conf)] == [
        "reg.example:5000/busybox:1",
        "docker.io/library/busybox:1",
    ]
    assert [str(r) for r in candidates("quay.io/a/b:2", conf)] == ["quay.io/a/b:2"]


def test_bad_registries_conf_names_the_key() -> None:
    with pytest.raises(ImageError, match=r"r.conf: registry\[0\].insecure: expected true or false"):
        parse_registries_conf('[[registry]]\nlocation = "a"\ninsecure = "yes"\n', "r.conf")


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_auth_most_specific_key_wins() -> None:
    doc = {
        "auths": {
            "https://reg.example": {"auth": _auth("all", "a")},
            "reg.example/team/app": {"auth": _auth("app", "b")},
        }
    }
    auth = parse_auth_file(json.dumps(doc).encode(), "a.json")
    found = auth.lookup("reg.example", "team/app")
    assert found is not None and found.username == "app" and found.password == "b"
    other = auth.lookup("reg.example", "team/other")
    assert other is not None and other.username == "all"
    assert auth.lookup("other.example", "x") is None
    assert "b" not in repr(found)


def test_auth_bad_entry() -> None:
    with pytest.raises(ImageError, match=r"a.json: auths\['r'\].auth: expected base64"):
        parse_auth_file(b'{"auths": {"r": {"auth": "bm9jb2xvbg=="}}}', "a.json")


def test_archive_members_never_leave_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name, kind in (("../evil", tarfile.REGTYPE), ("/abs", tarfile.REGTYPE),
                           ("./index.json", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.type = kind
            data = b"{}" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/shadow"
            tar.addfile(info, io.BytesIO(data))
    assert set(scan_archive(archive, "t")) == {"index.json"}
    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(b"\x1f\x8b" + b"\0" * 100)
    with pytest.raises(ImageError, match="not an uncompressed tar"):
        scan_archive(gz, "t")
