"""Layers in a booted systemd: shared base layers unpacked once, per-app
overlay roots, ephemeral writes, and `image render` against umoci."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from podman_sd.image.store import chain_ids
from tests.system.podhelpers import app_pid, gated_init_pod, unit_property, wait_for, write_pod
from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout, derive_image

pytestmark = pytest.mark.system

PAIR = """\
apiVersion: v1
kind: Pod
metadata:
  name: pair
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: one
    image: {one}
    command: [sleep, "1000"]
  - name: two
    image: {two}
    command: [sleep, "1000"]
"""


@pytest.fixture(scope="module")
def host(installed_host: TestHost) -> Iterator[TestHost]:
    build_busybox_layout(installed_host)
    # A file two levels below a directory the base owns: umoci's layer lists
    # var/lib/app/data/ (changed) but leaves var/lib/app/ out, so unpacking
    # must take that directory's owner and mode from the base layer.
    one = derive_image(
        installed_host,
        {"etc/app-name": "one", "srv/one-only": "1", "var/lib/app/data/notes": "n"},
        "one",
    )
    two = derive_image(installed_host, {"etc/app-name": "two"}, "two")
    accept_unsigned(installed_host, "oci:/srv/images")
    write_pod(installed_host, "pair", PAIR.format(one=one, two=two))
    yield installed_host


def in_app(host: TestHost, pid: int, *argv: str, check: bool = True) -> str:
    return host.run("nsenter", f"--target={pid}", "--all", "--", *argv, check=check).stdout


def image_layers(host: TestHost, ref: str) -> list[str]:
    """The chain ids of the image's layers, which name their directories."""
    record = json.loads(host.run("podman-sd", "image", "inspect", ref).stdout)
    return chain_ids([layer["diff_id"] for layer in record["layers"]])


def test_shared_base_layers_are_unpacked_once(host: TestHost) -> None:
    host.run("systemctl", "start", "pod@pair")
    one = image_layers(host, "oci:/srv/images/busybox:one")
    two = image_layers(host, "oci:/srv/images/busybox:two")
    assert one[0] == two[0] and one[1] != two[1]
    unpacked = host.run("ls", "/var/lib/podman-sd/layers/sha256").stdout.split()
    assert sorted(unpacked) == sorted({d.removeprefix("sha256:") for d in one + two})


def test_each_app_sees_its_own_image_and_its_own_writes(host: TestHost) -> None:
    one, two = app_pid(host, "pair", "one"), app_pid(host, "pair", "two")
    assert in_app(host, one, "cat", "/etc/app-name") == "one\n"
    assert in_app(host, two, "cat", "/etc/app-name") == "two\n"
    assert (
        host.run(
            "nsenter", f"--target={two}", "--all", "--", "test", "-e", "/srv/one-only", check=False
        ).returncode
        != 0
    )
    in_app(host, one, "sh", "-c", "echo scribble > /etc/app-name; echo new > /bin/added")
    assert in_app(host, one, "cat", "/etc/app-name") == "scribble\n"
    assert in_app(host, two, "cat", "/etc/app-name") == "two\n"
    assert (
        host.run(
            "nsenter", f"--target={two}", "--all", "--", "test", "-e", "/bin/added", check=False
        ).returncode
        != 0
    )
    # The layer on disk is untouched.
    layers = image_layers(host, "oci:/srv/images/busybox:one")
    top = layers[-1].removeprefix("sha256:")
    assert host.run("cat", f"/var/lib/podman-sd/layers/sha256/{top}/etc/app-name").stdout == "one\n"


def test_directories_a_layer_leaves_out_keep_their_owner(host: TestHost) -> None:
    one = app_pid(host, "pair", "one")
    assert in_app(host, one, "stat", "-c", "%u %g %a", "/var/lib/app") == "1000 1000 750\n"
    assert in_app(host, one, "cat", "/var/lib/app/data/notes") == "n\n"


def test_writes_are_gone_after_a_restart(host: TestHost) -> None:
    one = app_pid(host, "pair", "one")
    in_app(host, one, "sh", "-c", "echo scribble > /etc/app-name")
    host.run("systemctl", "restart", "pod@pair")
    one = app_pid(host, "pair", "one")
    assert in_app(host, one, "cat", "/etc/app-name") == "one\n"
    host.run("systemctl", "stop", "pod@pair")


def test_render_equals_umoci_unpack(host: TestHost) -> None:
    host.run("podman-sd", "image", "render", "oci:/srv/images/busybox:one", "/srv/rendered")
    host.run("umoci", "unpack", "--image", "/srv/images/busybox:one", "/srv/umoci-bundle")
    listing = (
        "cd \"$1\" && find . -mindepth 1 -printf '%P %y %m %u %g %s %l\\n' | sort && "
        "find . -type f -exec md5sum {} + | sort -k2"
    )
    ours = host.run("sh", "-c", listing, "sh", "/srv/rendered").stdout
    theirs = host.run("sh", "-c", listing, "sh", "/srv/umoci-bundle/rootfs").stdout
    assert ours.splitlines() and ours == theirs


def test_prune_keeps_what_is_referenced_or_in_use(host: TestHost) -> None:
    one = image_layers(host, "oci:/srv/images/busybox:one")
    two = image_layers(host, "oci:/srv/images/busybox:two")
    two_record = json.loads(
        host.run("podman-sd", "image", "inspect", "oci:/srv/images/busybox:two").stdout
    )
    host.run("systemctl", "start", "pod@pair")
    # As podman: an image a running pod uses is removed only with --force,
    # and an error removes none of the images named.
    refused = host.run(
        "podman-sd", "image", "rm", "oci:/srv/images/busybox:one", "oci:/srv/images/busybox:two",
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        "podman-sd: error: image oci:/srv/images/busybox:one is in use by pod pair; "
        "stop it first, or use --force (its layers stay until it stops)\n"
    )
    host.run("podman-sd", "image", "inspect", "oci:/srv/images/busybox:one")
    host.run("podman-sd", "image", "inspect", "oci:/srv/images/busybox:two")
    host.run("podman-sd", "image", "rm", "--force", "oci:/srv/images/busybox:two")
    pruned = json.loads(host.run("podman-sd", "image", "prune", "--json").stdout)
    # Image two is gone, but a running pod still uses its layers.
    assert two[-1] not in pruned["layers"]
    assert two_record["manifest_digest"] in pruned["blobs"]
    host.run("systemctl", "stop", "pod@pair")
    pruned = json.loads(host.run("podman-sd", "image", "prune", "--json").stdout)
    assert pruned["layers"] == [two[-1]]
    left = host.run("ls", "/var/lib/podman-sd/layers/sha256").stdout.split()
    assert sorted(left) == sorted(d.removeprefix("sha256:") for d in one)
    # Nothing more to do the second time.
    assert json.loads(host.run("podman-sd", "image", "prune", "--json").stdout) == {
        "layers": [],
        "blobs": [],
    }


def test_prune_keeps_the_layers_of_a_pod_that_is_starting(host: TestHost) -> None:
    """A pod uses its layers from the moment it has found them, not only once
    it runs: an `image rm` and `image prune` while its init container runs
    must leave the init container's and the apps' layers in place."""
    ref = "oci:/srv/images/busybox:two"
    host.run("podman-sd", "image", "pull", ref)  # an earlier test may have removed it
    two = image_layers(host, ref)
    host.run("rm", "-rf", "/srv/gate-gated")
    write_pod(host, "gated", gated_init_pod("gated", ref))
    host.run("systemctl", "start", "--no-block", "pod@gated")
    try:
        wait_for(lambda: unit_property(host, "pod-gated-wait.scope", "ActiveState") == "active")
        host.run("podman-sd", "image", "rm", "--force", ref)  # its init container runs
        pruned = json.loads(host.run("podman-sd", "image", "prune", "--json").stdout)
        assert not set(two) & set(pruned["layers"])
        host.run("touch", "/srv/gate-gated/open")
        wait_for(lambda: unit_property(host, "pod@gated.service", "ActiveState") != "activating")
        assert unit_property(host, "pod@gated.service", "ActiveState") == "active"
        assert in_app(host, app_pid(host, "gated", "app"), "cat", "/etc/app-name") == "two\n"
    finally:
        host.run("systemctl", "stop", "pod@gated")
    # Stopped, the pod no longer holds them.
    pruned = json.loads(host.run("podman-sd", "image", "prune", "--json").stdout)
    assert two[-1] in pruned["layers"]


def test_prune_keeps_the_layers_of_a_mounted_image(host: TestHost) -> None:
    ref = "oci:/srv/images/busybox:two"
    host.run("podman-sd", "image", "pull", ref)
    two = image_layers(host, ref)
    where = host.run("podman-sd", "image", "mount", ref).stdout.strip()
    try:
        host.run("podman-sd", "image", "rm", ref)
        pruned = json.loads(host.run("podman-sd", "image", "prune", "--json").stdout)
        assert not set(two) & set(pruned["layers"])
        assert host.run("cat", f"{where}/etc/app-name").stdout == "two\n"
    finally:
        host.run("podman-sd", "image", "umount", ref)
    pruned = json.loads(host.run("podman-sd", "image", "prune", "--json").stdout)
    assert two[-1] in pruned["layers"]


def test_image_mount_gives_a_read_only_view(host: TestHost) -> None:
    where = host.run("podman-sd", "image", "mount", "oci:/srv/images/busybox:one").stdout.strip()
    assert host.run("cat", f"{where}/etc/app-name").stdout == "one\n"
    assert host.run("touch", f"{where}/new", check=False).returncode != 0
    host.run("podman-sd", "image", "umount", "oci:/srv/images/busybox:one")
    assert host.run("test", "-e", where, check=False).returncode != 0
