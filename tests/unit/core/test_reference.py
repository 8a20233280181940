from __future__ import annotations

import pytest

from podman_sd.errors import ImageError
from podman_sd.image.reference import Transport, parse_reference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("quay.io/podman/hello", "quay.io/podman/hello:latest"),
        ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1"),
        ("127.0.0.1:5000/img@sha256:" + "a" * 64, "127.0.0.1:5000/img@sha256:" + "a" * 64),
        ("docker://ghcr.io/o/r:t", "ghcr.io/o/r:t"),
        ("oci:/srv/layout:tag", "oci:/srv/layout:tag"),
        ("oci-archive:/tmp/x.tar", "oci-archive:/tmp/x.tar"),
    ],
)
def test_normalised_references(text: str, expected: str) -> None:
    assert str(parse_reference(text)) == expected


def test_oci_reference_parts() -> None:
    ref = parse_reference("oci:/srv/layout:v2")
    assert ref.transport is Transport.OCI
    assert ref.path == "/srv/layout"
    assert ref.tag == "v2"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("oci:relative/path", "must be absolute"),
        ("Busybox", "not a valid repository"),
        ("busybox@sha256:xyz", "not a sha256 digest"),
        ("busybox:bad tag", "not a valid tag"),
        ("/srv/one.tar", "a path needs its transport: oci-archive:/srv/one.tar for an OCI"),
    ],
)
def test_bad_references_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ImageError, match=fragment):
        parse_reference(text)
