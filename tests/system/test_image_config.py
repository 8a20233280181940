"""The image config meets the manifest in a booted systemd: an empty
command, args or workingDir is not given (Kubernetes' runtimes and podman
play kube read it so), the image's Volumes are directories in the app's
root unless a volumeMount is there (CRI-O's default, image_volumes = mkdir),
and status shows the image an app started, not the one its tag names now."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system.podhelpers import (
    app_pid,
    messages,
    one_app_pod,
    status,
    unit_property,
    wait_for,
    write_pod,
)
from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout, derive_image

pytestmark = pytest.mark.system

LAYOUT = "/srv/images/busybox"
ECHO = f"oci:{LAYOUT}:echo"
VOL = f"oci:{LAYOUT}:vol"


def configured(host: TestHost, tag: str, *options: str) -> None:
    """Tag TAG: the busybox image with its config changed by umoci OPTIONS."""
    host.run("umoci", "config", "--image", f"{LAYOUT}:latest", "--tag", tag, *options)
    host.run("chmod", "-R", "a+rX", LAYOUT)  # umoci writes 0600 files


@pytest.fixture(scope="module")
def host(installed_host: TestHost) -> Iterator[TestHost]:
    build_busybox_layout(installed_host)
    configured(
        installed_host, "echo",
        "--config.entrypoint", "/bin/echo", "--config.entrypoint", "ep-says",
        "--config.cmd", "default-arg", "--config.workingdir", "/srv/wd",
    )  # fmt: skip
    # /var/lib/app/data is in the image (1000:1000); the others are not.
    configured(
        installed_host, "vol",
        "--config.volume", "/data", "--config.volume", "/opt/deep/cache",
        "--config.volume", "/var/lib/app/data",
    )  # fmt: skip
    accept_unsigned(installed_host, "oci:/srv/images")
    yield installed_host


def app(name: str, image: str, fields: str) -> str:
    return f"  - name: {name}\n    image: {image}\n    imagePullPolicy: IfNotPresent\n{fields}"


EMPTY_LISTS = (
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: emptylists\nspec:\n"
    "  restartPolicy: Never\n  containers:\n"
    + app("both", ECHO, "    command: []\n    args: []\n")
    + app("noargs", ECHO, "    args: []\n")
    + app("onlyargs", ECHO, "    command: []\n    args: [only-args]\n")
    + app("nowd", ECHO, '    workingDir: ""\n    command: [sh, -c, pwd]\n')
)


def test_empty_command_args_and_working_dir_are_not_given(host: TestHost) -> None:
    write_pod(host, "emptylists", EMPTY_LISTS)
    assert host.run("podman-sd", "validate", "/etc/podman-sd/pods/emptylists.yaml").stderr == ""
    host.run("systemctl", "start", "pod@emptylists", check=False)
    unit = "pod@emptylists.service"
    assert wait_for(lambda: unit_property(host, unit, "ActiveState") in ("inactive", "failed"))
    assert unit_property(host, unit, "Result") == "success"

    def said(name: str) -> list[str]:
        return messages(host, unit, f"SYSLOG_IDENTIFIER={name}", "PRIORITY=6")

    assert said("both") == ["ep-says default-arg"]
    assert said("noargs") == ["ep-says default-arg"]
    assert said("onlyargs") == ["ep-says only-args"]
    assert said("nowd") == ["/srv/wd"]


IMAGE_VOLUMES = (
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: imgvol\nspec:\n"
    "  terminationGracePeriodSeconds: 0\n"
    "  volumes:\n  - name: host\n    hostPath: {path: /srv/imgvol-host, type: Directory}\n"
    "  containers:\n"
    + app("plain", VOL, "    command: [sh, -c, 'echo by-app > /data/written; exec sleep 1000']\n")
    + app(
        "mounted",
        VOL,
        "    command: [sleep, '1000']\n    volumeMounts: [{name: host, mountPath: /data}]\n",
    )
    + app(
        "readonly",
        VOL,
        "    command: [sleep, '1000']\n    securityContext: {readOnlyRootFilesystem: true}\n",
    )
)


def in_app(host: TestHost, pid: int, *argv: str) -> str:
    return host.run("nsenter", f"--target={pid}", "--all", "--", *argv).stdout


def test_image_volumes_are_directories_unless_a_volume_mount_is_there(host: TestHost) -> None:
    host.sh("mkdir -p /srv/imgvol-host && echo from-host > /srv/imgvol-host/marker")
    write_pod(host, "imgvol", IMAGE_VOLUMES)
    host.run("systemctl", "start", "pod@imgvol")
    try:
        plain = app_pid(host, "imgvol", "plain")
        # Made where the image has nothing: root's, 0755, with its parents;
        # the app (root) wrote into it.
        shown = "stat -c '%n %F %u:%g %a' /data /opt /opt/deep /opt/deep/cache"
        assert in_app(host, plain, "sh", "-c", shown).splitlines() == [
            "/data directory 0:0 755",
            "/opt directory 0:0 755",
            "/opt/deep directory 0:0 755",
            "/opt/deep/cache directory 0:0 755",
        ]

        def written() -> str:
            argv = ("nsenter", f"--target={plain}", "--all", "--", "cat", "/data/written")
            return host.run(*argv, check=False).stdout

        assert wait_for(written) == "by-app\n"
        # What the image has there stays as the image made it.
        assert in_app(host, plain, "stat", "-c", "%u:%g", "/var/lib/app/data") == "1000:1000\n"
        # The manifest's volumeMount wins: the host's directory, untouched.
        mounted = app_pid(host, "imgvol", "mounted")
        assert in_app(host, mounted, "cat", "/data/marker") == "from-host\n"
        assert host.run("ls", "-A", "/srv/imgvol-host").stdout == "marker\n"
        # Made before the root became read-only.
        readonly = app_pid(host, "imgvol", "readonly")
        assert in_app(host, readonly, "stat", "-c", "%F", "/data") == "directory\n"
    finally:
        host.run("systemctl", "stop", "pod@imgvol")


def test_status_shows_the_image_the_app_started_after_its_tag_moved(host: TestHost) -> None:
    ref = derive_image(host, {"/version": "one"}, tag="moving")
    manifest = one_app_pod("moving", "exec sleep 1000").replace(f"oci:{LAYOUT}:latest", ref)
    write_pod(host, "moving", manifest)
    host.run("systemctl", "start", "pod@moving")
    try:
        started = host.run("podman-sd", "image", "inspect", ref).stdout
        derive_image(host, {"/version": "two"}, tag="moving")
        host.run("podman-sd", "image", "pull", ref)
        digest = status(host, "moving")["apps"][0]["image_digest"]
        assert digest and digest in started
        assert digest not in host.run("podman-sd", "image", "inspect", ref).stdout
        assert digest[:19] in host.run("podman-sd", "status", "moving").stdout
    finally:
        host.run("systemctl", "stop", "pod@moving")
