"""Pure pieces of the runtime: /etc files, resource mapping, safe paths, volumes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podman_sd.errors import RuntimeSetupError
from podman_sd.manifest import parse_pod
from podman_sd.runtime import limits, podfiles, volumes
from podman_sd.runtime.rootfs import resolve_in_root


def pod(spec: str, containers: str = "  - {name: c, image: 'oci:/srv/x:latest'}\n", meta: str = ""):  # type: ignore[no-untyped-def]
    text = f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n{meta}spec:\n{spec}  containers:\n{containers}"
    return parse_pod(text, "p.yaml")


def test_hosts_file_has_hostname_and_aliases() -> None:
    p = pod("  hostAliases:\n  - ip: 10.1.2.3\n    hostnames: [db, db.local]\n")
    text = podfiles.hosts_file(p, "web")
    assert "127.0.0.1\tlocalhost" in text
    assert "127.0.1.1\tweb" in text
    assert "10.1.2.3\tdb\tdb.local" in text


def test_subdomain_gives_a_fqdn() -> None:
    p = pod("  hostname: web\n  subdomain: front\n")
    assert "web.front.default.svc.cluster.local\tweb" in podfiles.hosts_file(p, "web")


def test_resolv_conf_none_policy_uses_only_dns_config() -> None:
    p = pod(
        "  dnsPolicy: None\n  dnsConfig:\n    nameservers: [192.0.2.1]\n"
        "    searches: [example.org]\n    options: [{name: ndots, value: '2'}, {name: edns0}]\n"
    )
    text = podfiles.resolv_conf(p)
    assert "nameserver 192.0.2.1" in text
    assert "search example.org" in text
    assert "options ndots:2 edns0" in text


def test_resolv_conf_default_starts_from_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 198.51.100.1\nsearch lan\noptions ndots:5\n")
    monkeypatch.setattr(podfiles, "HOST_RESOLV_CONF", host)
    p = pod(
        "  dnsConfig:\n    nameservers: [192.0.2.1]\n    options: [{name: ndots, value: '1'}]\n"
    )
    text = podfiles.resolv_conf(p)
    assert text.index("198.51.100.1") < text.index("192.0.2.1")
    assert "options ndots:1" in text and "ndots:5" not in text


def test_container_resources_map_to_scope_properties() -> None:
    p = pod(
        "",
        "  - name: c\n    image: 'oci:/srv/x:latest'\n    resources:\n"
        "      limits: {memory: 128Mi, cpu: 500m}\n      requests: {memory: 64Mi, cpu: 250m}\n",
    )
    props = dict((n, v) for n, _, v in limits.resource_properties(p.spec.containers[0].resources))
    assert props == {
        "MemoryMax": 128 * 1024 * 1024,
        "CPUQuotaPerSecUSec": 500_000,
        "MemoryLow": 64 * 1024 * 1024,
        "CPUWeight": limits.cpu_weight(250),
    }


def test_cpu_weight_matches_the_kubelet() -> None:
    # The kubelet's shares→weight conversion: 1 cpu = 1024 shares = weight 39.
    assert limits.cpu_weight(1000) == 39
    assert limits.cpu_weight(0) == 1


def test_pids_limit_annotation_goes_to_the_slice() -> None:
    p = pod("", meta="  annotations: {podman-sd.io/pids-limit: '64'}\n")
    assert ("TasksMax", "t", 64) in limits.pod_slice_properties(p)


def test_resolve_in_root_never_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    os.symlink("/etc", root / "abs")
    os.symlink("../../../../etc", root / "rel")
    os.symlink("real", root / "inside")
    os.symlink("loop", root / "loop")
    assert resolve_in_root(root, "/abs/passwd") == root / "etc/passwd"
    assert resolve_in_root(root, "/rel/passwd") == root / "etc/passwd"
    assert resolve_in_root(root, "/inside/x") == root / "real/x"
    assert resolve_in_root(root, "/../../x") == root / "x"
    with pytest.raises(OSError, match="symbolic links"):
        resolve_in_root(root, "/loop")


def test_host_path_types(tmp_path: Path) -> None:
    made = tmp_path / "made"
    assert volumes.host_path("a", made, "DirectoryOrCreate") == made and made.is_dir()
    with pytest.raises(RuntimeSetupError, match="does not exist"):
        volumes.host_path("b", tmp_path / "missing", "Directory")
    with pytest.raises(RuntimeSetupError, match="is not a regular file"):
        volumes.host_path("c", made, "File")
    untyped = tmp_path / "untyped"
    assert volumes.host_path("d", untyped, "") == untyped and untyped.is_dir()


def test_plan_uses_the_manifest_type_names() -> None:
    from types import SimpleNamespace

    from podman_sd.image.spec import ImageConfig
    from podman_sd.runtime.plan import compile_plan

    p = pod(
        "  volumes:\n  - name: h\n    hostPath: {path: /srv, type: DirectoryOrCreate}\n"
        "  - name: m\n    emptyDir: {medium: Memory, sizeLimit: 1Mi}\n  - name: d\n    emptyDir: {}\n"
    )
    config = ImageConfig(("/bin/sh",), (), (), "", "", "SIGQUIT", (), "linux", "amd64")
    image = SimpleNamespace(
        image=SimpleNamespace(reference="oci:/srv/x:latest", manifest_digest="sha256:" + "0" * 64),
        config=config,
        layers=(),
    )
    plan = compile_plan(p, {"c": image})
    assert plan["apps"][0]["launch"]["stop_signal"] == 3
    assert plan["apps"][0]["launch"]["argv"] == ["/bin/sh"]
    assert plan["cacheable"] is False  # oci:...:latest defaults to imagePullPolicy Always
    assert plan["volumes"] == [
        {"name": "h", "kind": volumes.HOST_PATH, "path": "/srv", "type": "DirectoryOrCreate"},
        {"name": "m", "kind": volumes.MEMORY, "size": 1024 * 1024},
        {"name": "d", "kind": volumes.EMPTY_DIR, "size": None},
    ]


def test_sub_path_cannot_escape_the_volume(tmp_path: Path) -> None:
    base = tmp_path / "vol"
    base.mkdir()
    os.symlink("/etc", base / "evil")
    with pytest.raises(RuntimeSetupError, match="leads outside the volume"):
        volumes._sub_path(base, "evil", "volume v")
    assert volumes._sub_path(base, "a/b", "volume v") == (base, ("a", "b"))
    assert (base / "a/b").is_dir()
    os.symlink("a", base / "inside")  # a symlink that stays inside is followed, once
    assert volumes._sub_path(base, "inside/b", "volume v") == (base, ("a", "b"))


def test_sub_path_makes_nothing_outside_and_mounts_what_it_opened(tmp_path: Path) -> None:
    """A missing subPath is made inside the volume only, never through a
    symlink (an app could plant one to /etc); the app's process opens the
    checked parts without following symlinks, so a name swapped for a
    symlink to / in between is refused, not mounted."""
    base, outside = tmp_path / "vol", tmp_path / "outside"
    base.mkdir()
    outside.mkdir()
    os.symlink(outside, base / "cache")
    with pytest.raises(RuntimeSetupError, match="leads through a symlink"):
        volumes._sub_path(base, "cache/new", "volume v")
    assert list(outside.iterdir()) == []  # nothing made outside
    (base / "data").mkdir()
    source, parts = volumes._sub_path(base, "data", "volume v")
    fd = volumes.open_beneath(source, parts, "volume v")
    assert os.path.samefile(f"/proc/self/fd/{fd}", base / "data")
    os.close(fd)
    os.rename(base / "data", base / "data.real")
    os.symlink("/", base / "data")  # swapped after the check
    with pytest.raises(RuntimeSetupError, match="leads through a symlink"):
        volumes.open_beneath(source, parts, "volume v")
