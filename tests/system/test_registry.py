"""Pulling from real registries (issue 4): Debian's docker-registry with TLS
from a CA made by the test, basic auth and token auth, images built by umoci
and pushed by skopeo; the fetch helper runs as an unprivileged transient
service and says so in the journal."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podman_sd.image.ensure import helper_properties
from tests.system.podhelpers import journal_now
from tests.system.registry_setup import (
    BASIC,
    MULTI_INDEX,
    PASSWORD,
    TOKEN,
    TOKEN_PASSWORD,
    TOKEN_USER,
    USER,
    push,
    start_registries,
)
from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def host(installed_host: TestHost) -> Iterator[TestHost]:
    start_registries(installed_host)
    accept_unsigned(installed_host, BASIC, TOKEN, "oci:/srv/images", "oci-archive:/srv")
    build_busybox_layout(installed_host, "/srv/images/busybox", "latest", "/bin/sh")
    build_busybox_layout(installed_host, "/srv/images/busybox", "other", "/bin/true")
    installed_host.run(
        "umoci", "config", "--image", "/srv/images/busybox:other", "--architecture=riscv64"
    )
    arch = installed_host.run("dpkg", "--print-architecture").stdout.strip()
    installed_host.run(
        "/usr/bin/python3", "-c", MULTI_INDEX, "/srv/images/busybox", "latest", "other",
        "riscv64", "multi", env={"HOST_ARCH": arch},
    )  # fmt: skip
    layout = "oci:/srv/images/busybox"
    push(installed_host, f"{layout}:latest", f"{BASIC}/busybox:latest", f"{USER}:{PASSWORD}")
    push(
        installed_host,
        f"{layout}:latest",
        f"{TOKEN}/busybox:latest",
        f"{TOKEN_USER}:{TOKEN_PASSWORD}",
    )
    push(installed_host, f"{layout}:multi", f"{BASIC}/multi:latest", f"{USER}:{PASSWORD}", "--all")
    yield installed_host


def image_pull(host: TestHost, reference: str, **kwargs: object) -> str:
    result = host.run("podman-sd", "image", "pull", reference, **kwargs)  # type: ignore[arg-type]
    return result.stdout.strip()


def fetch_journal(host: TestHost) -> list[dict[str, str]]:
    out = host.run(
        "journalctl", "SYSLOG_IDENTIFIER=podman-sd-fetch", "-o", "json", "--no-pager"
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def manifest_digest(host: TestHost, reference: str, *creds: str) -> str:
    out = host.run(
        "skopeo", "inspect", "--raw", "--cert-dir=/srv/tls/certs", *creds, f"docker://{reference}"
    ).stdout
    import hashlib

    return f"sha256:{hashlib.sha256(out.encode()).hexdigest()}"


def test_pull_with_tls_and_basic_auth_runs_unprivileged(host: TestHost) -> None:
    digest = image_pull(host, f"{BASIC}/busybox:latest")
    assert digest == manifest_digest(host, f"{BASIC}/busybox:latest", f"--creds={USER}:{PASSWORD}")
    listing = json.loads(host.run("podman-sd", "image", "list", "--json").stdout)
    assert any(r["reference"] == f"{BASIC}/busybox:latest" for r in listing)
    entries = [e for e in fetch_journal(host) if e.get("IMAGE_NAME") == f"{BASIC}/busybox:latest"]
    assert entries, "no journal line from podman-sd-fetch"
    entry = entries[-1]
    uid = host.run("id", "-u", "podman-sd-fetch").stdout.strip()
    assert entry["_UID"] == uid != "0"
    assert int(entry["_CAP_EFFECTIVE"], 16) == 0
    assert entry["IMAGE_DIGEST"] == digest
    assert f"{BASIC}/busybox:latest {digest}" in entry["MESSAGE"]
    # Blobs are the helper's; nothing half-written is left.
    assert host.run("ls", "/var/lib/podman-sd/blobs/incoming").stdout.strip() == ""
    out = host.run("stat", "-c", "%U", f"/var/lib/podman-sd/blobs/sha256/{digest[7:]}").stdout
    assert out.strip() == "podman-sd-fetch"
    # The helper writes its part of the store, but cannot swap root's
    # directories for its own (prune would then delete where it points):
    # tried as the helper runs, its user in its sandbox.
    sandbox = [f"--property={p}" for p in helper_properties(Path("/var/lib/podman-sd"))]
    for owned_by_root in ("blobs", "layers", "pods"):
        swap = host.run(
            "systemd-run", "--quiet", "--wait", "--pipe", *sandbox,
            "mv", f"/var/lib/podman-sd/{owned_by_root}", "/var/lib/podman-sd/mine", check=False,
        )  # fmt: skip
        assert swap.returncode != 0 and "Device or resource busy" in swap.stderr, swap
    assert host.run("test", "-e", "/var/lib/podman-sd/mine", check=False).returncode != 0


def test_pull_with_bearer_token(host: TestHost) -> None:
    digest = image_pull(host, f"{TOKEN}/busybox:latest")
    assert digest.startswith("sha256:")
    record = json.loads(host.run("podman-sd", "image", "inspect", f"{TOKEN}/busybox:latest").stdout)
    assert record["manifest_digest"] == digest


def test_multi_platform_index_picks_this_host(host: TestHost) -> None:
    digest = image_pull(host, f"{BASIC}/multi:latest")
    # The host's entry is the image pushed as busybox:latest.
    assert digest == image_pull(host, f"{BASIC}/busybox:latest")


def test_wrong_credentials_are_one_clear_line(host: TestHost) -> None:
    host.write_file(
        "/srv/bad-auth.json",
        json.dumps({"auths": {BASIC: {"auth": "cHVsbGVyOndyb25n"}}}),  # puller:wrong
        mode=0o600,
    )
    result = host.run(
        "podman-sd", "image", "pull", f"{BASIC}/busybox:latest",
        check=False, env={"REGISTRY_AUTH_FILE": "/srv/bad-auth.json"},
    )  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "'puller'" in lines[0] and "rejected (HTTP 401)" in lines[0]
    assert "/bad-auth.json" in lines[0] or "auth.json" in lines[0]


def test_anonymous_token_request_is_refused_clearly(host: TestHost) -> None:
    host.write_file("/srv/empty-auth.json", '{"auths": {}}', mode=0o600)
    result = host.run(
        "podman-sd", "image", "pull", f"{TOKEN}/busybox:latest",
        check=False, env={"REGISTRY_AUTH_FILE": "/srv/empty-auth.json"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "refused anonymous access" in result.stderr


def test_unknown_ca_fails_and_requests_ca_bundle_does_not_help(host: TestHost) -> None:
    # localhost:5443 has no certs.d entry: the CA only the test made is unknown.
    result = host.run(
        "podman-sd-fetch", "pull", "localhost:5443/busybox:latest", check=False,
        env={"PODMAN_SD_FETCH_UNSANDBOXED": "1", "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "TLS verification failed" in result.stderr
    assert "certs.d/localhost:5443/ca.crt" in result.stderr
    # With REQUESTS_CA_BUNDLE set, the per-host CA from certs.d is still used.
    ok = host.run(
        "podman-sd-fetch", "pull", f"{BASIC}/busybox:latest",
        env={"REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt", "PODMAN_SD_FETCH_UNSANDBOXED": "1"},
    )  # fmt: skip
    assert "sha256:" in ok.stdout


def test_oci_archive_import(host: TestHost) -> None:
    host.run(
        "skopeo", "copy", "--quiet", "oci:/srv/images/busybox:latest",
        "oci-archive:/srv/busybox.tar:latest",
    )  # fmt: skip
    digest = image_pull(host, "oci-archive:/srv/busybox.tar:latest")
    assert digest.startswith("sha256:")


def test_pod_pulls_from_the_registry(host: TestHost) -> None:
    host.write_file(
        "/etc/podman-sd/pods/fromreg.yaml",
        f"""\
apiVersion: v1
kind: Pod
metadata:
  name: fromreg
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {TOKEN}/busybox:latest
    imagePullPolicy: Always
    command: ["/bin/sh", "-c", "echo pulled-and-running; exec sleep 1000"]
""",
    )
    host.run("systemctl", "daemon-reload")
    host.run("systemctl", "start", "pod@fromreg")
    try:
        assert host.run("systemctl", "is-active", "pod@fromreg").stdout.strip() == "active"
        entries = [
            e for e in fetch_journal(host) if e.get("IMAGE_NAME") == f"{TOKEN}/busybox:latest"
        ]
        assert entries and entries[-1]["_UID"] != "0"
    finally:
        host.run("systemctl", "stop", "pod@fromreg")


def test_concurrent_pulls_download_each_blob_once(host: TestHost) -> None:
    host.run("rm", "-rf", "/var/lib/podman-sd/blobs/sha256")
    host.run("rm", "-f", "/var/lib/podman-sd/images.json")
    since = journal_now(host)
    host.sh(
        f"podman-sd image pull {BASIC}/busybox:latest >/srv/p1 & "
        f"podman-sd image pull {BASIC}/busybox:latest >/srv/p2 & wait"
    )
    assert host.run("cat", "/srv/p1").stdout == host.run("cat", "/srv/p2").stdout
    log = host.run(
        "journalctl", "-u", "registry-basic", "--since", since, "-o", "cat", "--no-pager"
    ).stdout
    blob_gets = [
        line for line in log.splitlines() if "GET /v2/busybox/blobs/" in line and '" 200 ' in line
    ]
    digests = [line.split("/blobs/")[1].split()[0] for line in blob_gets]
    record = json.loads(host.run("podman-sd", "image", "inspect", f"{BASIC}/busybox:latest").stdout)
    # Each pull reads the small config before it takes any lock; layers once.
    for layer in record["layers"]:
        assert digests.count(layer["digest"]) == 1, digests


def test_pods_started_together_share_one_pull_and_one_unpack(host: TestHost) -> None:
    """Three pods of one image not in the store yet, started in one go
    (systemd runs their starts in parallel): each layer is downloaded once
    and unpacked once, and every pod runs."""
    host.run("rm", "-rf", "/var/lib/podman-sd/blobs/sha256", "/var/lib/podman-sd/layers/sha256")
    host.run("rm", "-f", "/var/lib/podman-sd/images.json")
    pods = ["share-a", "share-b", "share-c"]
    for pod in pods:
        host.write_file(
            f"/etc/podman-sd/pods/{pod}.yaml",
            f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {pod}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: {BASIC}/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "1000"]
""",
        )
    host.run("systemctl", "daemon-reload")
    since = journal_now(host)
    units = [f"pod@{pod}" for pod in pods]
    try:
        host.run("systemctl", "start", *units, timeout=300)
        for unit in units:
            assert host.run("systemctl", "is-active", unit).stdout.strip() == "active"
        log = host.run(
            "journalctl", "-u", "registry-basic", "--since", since, "-o", "cat", "--no-pager"
        ).stdout
        fetched = [
            line.split("/blobs/")[1].split()[0]
            for line in log.splitlines()
            if "GET /v2/busybox/blobs/" in line and '" 200 ' in line
        ]
        record = json.loads(
            host.run("podman-sd", "image", "inspect", f"{BASIC}/busybox:latest").stdout
        )
        for layer in record["layers"]:
            assert fetched.count(layer["digest"]) == 1, fetched
        unpacked = host.run("ls", "/var/lib/podman-sd/layers/sha256").stdout.split()
        assert sorted(unpacked) == sorted(
            layer["diff_id"].removeprefix("sha256:") for layer in record["layers"]
        )
    finally:
        host.run("systemctl", "stop", *units)


def fetch_units(host: TestHost) -> list[str]:
    """The fetch helpers' transient services that are loaded (running or stopping)."""
    out = host.run(
        "systemctl", "list-units", "--all", "--plain", "--no-legend", "podman-sd-fetch-*"
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_stopping_a_pod_stops_its_pull(host: TestHost) -> None:
    """A pod stopped while its image downloads leaves no fetch helper behind."""
    # A "registry" that accepts connections and never answers: the pull
    # hangs (for a minute per attempt) until something stops it.
    host.run(
        "systemd-run", "--quiet", "--unit=silent-registry", "/usr/bin/python3", "-c",
        "import signal, socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 5999)); s.listen(16); signal.pause()",
    )  # fmt: skip
    host.write_file(
        "/etc/podman-sd/pods/stalled.yaml",
        """\
apiVersion: v1
kind: Pod
metadata:
  name: stalled
spec:
  containers:
  - name: app
    image: 127.0.0.1:5999/never:latest
    imagePullPolicy: Always
    command: ["sleep", "1000"]
""",
    )
    host.run("systemctl", "daemon-reload")
    try:
        host.run("systemctl", "start", "--no-block", "pod@stalled")
        deadline = time.monotonic() + 20
        while not fetch_units(host):
            assert time.monotonic() < deadline, "the pod never started its pull"
            time.sleep(0.1)
        host.run("systemctl", "stop", "pod@stalled")
        deadline = time.monotonic() + 10
        while left := fetch_units(host):
            assert time.monotonic() < deadline, f"still pulling after the pod stopped: {left}"
            time.sleep(0.1)
    finally:
        host.run("systemctl", "stop", "pod@stalled", "silent-registry", check=False)
