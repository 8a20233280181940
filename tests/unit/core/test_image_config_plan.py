"""The image config in the launch plan: empty command/args/workingDir as
not given, the image's Volumes, the digest of the image an app starts."""

from __future__ import annotations

import json
import marshal
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from podman_sd.errors import ImageError, RuntimeSetupError
from podman_sd.image.spec import ImageConfig, parse_config
from podman_sd.manifest import Severity, check_pod, parse_pod
from podman_sd.manifest.model import Pod
from podman_sd.runtime import appspec, rootfs
from podman_sd.runtime.app import AppLaunch
from podman_sd.runtime.plan import compile_plan

DIGEST = "sha256:" + "ab" * 32
ECHO = ImageConfig(
    entrypoint=("/bin/echo", "ep-says"),
    cmd=("default-arg",),
    env=("PATH=/bin",),
    working_dir="/srv",
    user="",
    stop_signal=None,
    diff_ids=(),
    os="linux",
    architecture="amd64",
)


def manifest(container: str = "", spec: str = "") -> str:
    return (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n"
        f"{spec}  containers:\n  - name: c\n    image: oci:/srv/x:1\n{container}"
    )


def pod_of(container: str = "", spec: str = "") -> Pod:
    return parse_pod(manifest(container, spec), "p.yaml")


def argv(container: str) -> tuple[str, ...]:
    p = pod_of(container)
    c = p.spec.containers[0]
    return appspec.app_argv(c, ECHO, appspec.app_environment(p, c, ECHO))


def plan_of(p: Pod, config: ImageConfig = ECHO) -> dict[str, Any]:
    image = SimpleNamespace(
        image=SimpleNamespace(reference="oci:/srv/x:1", manifest_digest=DIGEST),
        config=config,
        layers=(Path("/layers/0"),),
    )
    return compile_plan(p, {c.name: image for c in (*p.spec.init_containers, *p.spec.containers)})


# -- bug 1: an empty list or string is not given ---------------------------------


def test_empty_command_and_args_run_the_image_entrypoint_and_cmd() -> None:
    assert argv("    command: []\n    args: []\n") == ("/bin/echo", "ep-says", "default-arg")


def test_empty_args_keep_the_image_cmd() -> None:
    assert argv("    args: []\n") == ("/bin/echo", "ep-says", "default-arg")


def test_empty_command_with_args_keeps_the_image_entrypoint() -> None:
    assert argv("    command: []\n    args: [only-args]\n") == ("/bin/echo", "ep-says", "only-args")


def test_command_with_empty_args_drops_the_image_cmd() -> None:
    # As before: a command given means the image's Cmd is not used.
    assert argv("    command: [/bin/true]\n    args: []\n") == ("/bin/true",)


def test_nothing_to_run_names_both_sides() -> None:
    p = pod_of("    command: []\n    args: []\n")
    empty = ImageConfig((), (), (), "", "", None, (), "linux", "amd64")
    c = p.spec.containers[0]
    with pytest.raises(RuntimeSetupError) as info:
        appspec.app_argv(c, empty, {})
    assert str(info.value) == (
        "container c: nothing to run (no command or args in the manifest, "
        "no Entrypoint or Cmd in the image)"
    )


def test_empty_working_dir_is_the_image_one() -> None:
    p = pod_of('    workingDir: ""\n')
    assert plan_of(p)["apps"][0]["launch"]["working_dir"] == "/srv"
    bare = ImageConfig((), ("x",), (), "", "", None, (), "linux", "amd64")
    assert plan_of(p, bare)["apps"][0]["launch"]["working_dir"] == "/"


def test_empty_termination_message_path_is_the_default() -> None:
    c = pod_of('    terminationMessagePath: ""\n').spec.containers[0]
    assert c.termination_message_path == "/dev/termination-log"


def test_relative_working_dir_is_still_refused() -> None:
    _, found = check_pod(manifest("    workingDir: srv\n"), "p.yaml")
    assert [d.message for d in found] == ['"srv" is not an absolute path']


def test_image_pull_secrets_are_an_error_naming_auth_json() -> None:
    """Not ignored: only scheduling fields are (DESIGN.md), and the pod would
    pull with other credentials than those it names; an empty list too."""
    for value in ("[{name: regcred}]", "[]"):
        p, found = check_pod(manifest(spec=f"  imagePullSecrets: {value}\n"), "p.yaml")
        assert p is None
        (error,) = found
        assert error.severity is Severity.ERROR
        assert (error.path, error.line, error.column) == ("spec.imagePullSecrets", 6, 3)
        assert "/etc/podman-sd/auth.json" in error.message


# -- bug 2: the image's Volumes ------------------------------------------------------


def config_json(volumes: Any) -> bytes:
    return json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Volumes": volumes}}
    ).encode()


def test_config_volumes_are_parsed_normalized_and_sorted() -> None:
    raw = config_json({"/var/lib/db/": {}, "/data": {}, "cache": {}, "/a/../b": {}, "/": {}})
    assert parse_config(raw, "image x: config").volumes == (
        "/b",
        "/cache",
        "/data",
        "/var/lib/db",
    )
    assert parse_config(config_json(None), "x").volumes == ()
    no_config = b'{"architecture": "amd64", "os": "linux"}'
    assert parse_config(no_config, "x").volumes == ()


def test_config_volumes_of_the_wrong_type_are_an_error() -> None:
    with pytest.raises(ImageError, match=r"^image x: config: Volumes: expected an object"):
        parse_config(config_json(["/data"]), "image x: config")


def test_plan_carries_the_image_volumes_no_mount_covers() -> None:
    config = ImageConfig(
        ("/bin/sh",), (), (), "", "", None, (), "linux", "amd64",
        volumes=("/data", "/logs", "/srv/a", "/var/cache"),
    )  # fmt: skip
    p = pod_of(
        "    volumeMounts:\n    - {name: v, mountPath: /data}\n    - {name: v, mountPath: /srv/}\n"
        "    - {name: v, mountPath: /var/cache/x}\n",
        spec="  volumes:\n  - {name: v, emptyDir: {}}\n",
    )
    launch = plan_of(p, config)["apps"][0]["launch"]
    # /data is the mount's, /srv/a lies in one; /var/cache only holds one.
    assert launch["image_volumes"] == ("/logs", "/var/cache")


def test_a_mount_at_the_root_covers_every_image_volume() -> None:
    config = ImageConfig((), ("x",), (), "", "", None, (), "linux", "amd64", volumes=("/data",))
    p = pod_of(
        "    volumeMounts:\n    - {name: v, mountPath: /}\n",
        spec="  volumes:\n  - {name: v, emptyDir: {}}\n",
    )
    assert plan_of(p, config)["apps"][0]["launch"]["image_volumes"] == ()


def test_init_containers_get_their_image_volumes_too() -> None:
    config = ImageConfig((), ("x",), (), "", "", None, (), "linux", "amd64", volumes=("/data",))
    p = pod_of(spec="  initContainers:\n  - {name: i, image: 'oci:/srv/x:1'}\n")
    plan = plan_of(p, config)
    assert plan["init"][0]["launch"]["image_volumes"] == ("/data",)
    assert plan["apps"][0]["launch"]["image_volumes"] == ("/data",)


def test_a_cached_plan_gives_the_app_the_same_launch(tmp_path: Path) -> None:
    """What the launcher makes of a plan (launcher.app_launch): from the
    marshalled cache file as from a fresh compile."""
    from podman_sd import launcher

    config = ImageConfig((), ("x",), (), "", "", None, (), "linux", "amd64", volumes=("/data",))
    fresh = plan_of(pod_of(), config)
    cached = marshal.loads(marshal.dumps(fresh))
    env = {"PODMAN_SD_STATE_DIR": str(tmp_path / "state"), "PODMAN_SD_RUNTIME_DIR": str(tmp_path)}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        made = [launcher.app_launch("p", plan["apps"][0], (), {}, ()) for plan in (fresh, cached)]
    assert made[0] == made[1]
    launch: AppLaunch = made[1]
    assert launch.image_volumes == ("/data",)
    assert launch.image_digest == DIGEST


def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "srv").mkdir(parents=True)
    (root / "owned").mkdir(mode=0o700)
    os.chmod(root / "owned", 0o1750)
    (root / "owned" / "kept").write_text("image content")
    (root / "file").write_text("not a directory")
    os.symlink("/srv", root / "link")
    os.symlink("../../../..", root / "srv" / "up")
    return root


def test_a_missing_image_volume_is_made_0755_with_its_parents(tmp_path: Path) -> None:
    root = image_root(tmp_path)
    old = os.umask(0o077)  # the launcher's umask must not show
    try:
        rootfs.make_image_volume(root, "/var/lib/data")
    finally:
        os.umask(old)
    for path in ("var", "var/lib", "var/lib/data"):
        st = os.lstat(root / path)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, path
        assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())


def test_an_image_volume_the_image_has_stays_as_it_is(tmp_path: Path) -> None:
    root = image_root(tmp_path)
    rootfs.make_image_volume(root, "/owned")
    assert stat.S_IMODE(os.lstat(root / "owned").st_mode) == 0o1750
    assert (root / "owned" / "kept").read_text() == "image content"


def test_image_volumes_follow_symlinks_inside_the_root_only(tmp_path: Path) -> None:
    root = image_root(tmp_path)
    rootfs.make_image_volume(root, "/link/data")
    assert (root / "srv" / "data").is_dir()
    rootfs.make_image_volume(root, "/srv/up/escaped")
    assert (root / "escaped").is_dir()
    assert not (tmp_path / "escaped").exists()


def test_an_image_volume_on_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    root = image_root(tmp_path)
    with pytest.raises(RuntimeSetupError) as info:
        rootfs.make_image_volume(root, "/file/data")
    assert str(info.value) == "image volume /file/data: /file is not a directory in the image"


# -- bug 3: the digest of the image an app starts -----------------------------------


def test_plan_has_the_manifest_digest_of_each_app_image() -> None:
    p = pod_of(spec="  initContainers:\n  - {name: i, image: 'oci:/srv/x:1'}\n")
    plan = plan_of(p)
    assert plan["init"][0]["launch"]["image_digest"] == DIGEST
    assert plan["apps"][0]["launch"]["image_digest"] == DIGEST
    assert plan["apps"][0]["launch"]["image"] == "oci:/srv/x:1"


def test_every_key_of_the_launch_plan_is_an_app_launch_field() -> None:
    # The launcher spreads plan["launch"] into AppLaunch(**...).
    launch = plan_of(pod_of())["apps"][0]["launch"]
    assert set(launch) <= set(AppLaunch._fields)
