"""podman-sd-generator, run as systemd runs it, into temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from podman_sd import generator
from podman_sd.manifest import parse_pod

REPO = Path(__file__).resolve().parents[3]

WEB = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    podman-sd.io/after: "db, cache"
    podman-sd.io/requires: store
    podman-sd.io/wanted-by: multi-user.target
    podman-sd.io/required-by: shop.target
    podman-sd.io/description: "Shop front, 100% uptime"
    podman-sd.io/restart-sec: "5"
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 20
  containers:
  - {name: nginx, image: "nginx:1.25"}
"""
PLAIN = "apiVersion: v1\nkind: Pod\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: a, image: b}\n"
BAD = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: b, ports: [{containerPort: 0}]}\n"


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    pods = tmp_path / "pods"
    out = tmp_path / "out"
    pods.mkdir()
    out.mkdir()
    monkeypatch.setenv("PODMAN_SD_PODS_DIR", str(pods))
    monkeypatch.delenv("SYSTEMD_SCOPE", raising=False)
    return pods, out


def dropin(out: Path, name: str) -> str:
    return (out / f"pod@{name}.service.d" / "50-podman-sd.conf").read_text()


def test_dropin_and_links(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pods, out = dirs
    (pods / "web.yaml").write_text(WEB)
    (pods / "plain.yaml").write_text(PLAIN)
    (pods / "notes.txt").write_text("not a manifest")
    (pods / ".web.yaml.swp").write_text("editor junk")
    assert generator.main([str(out), str(out / "early"), str(out / "late")]) == 0
    assert capsys.readouterr().err == ""

    text = dropin(out, "web")
    assert "[Unit]\nDescription=Shop front, 100%% uptime\n" in text
    assert f"SourcePath={pods / 'web.yaml'}\n" in text
    assert "StartLimitIntervalSec=60\nStartLimitBurst=5\n" in text
    for line in [
        "After=pod@db.service",
        "Wants=pod@db.service",
        "After=pod@cache.service",
        "Wants=pod@cache.service",
        "After=pod@store.service",
        "Requires=pod@store.service",
    ]:
        assert line + "\n" in text
    assert text.endswith(
        "[Service]\nRestart=on-failure\nRestartSec=5\nTimeoutStopSec=35\nRestartPreventExitStatus=124\n"
    )

    plain = dropin(out, "plain")
    assert "Description=Pod plain (podman-sd)\n" in plain
    assert "Restart=no\nRestartSec=2\nTimeoutStopSec=45\n" in plain
    assert "After=" not in plain

    wants = out / "multi-user.target.wants" / "pod@web.service"
    requires = out / "shop.target.requires" / "pod@web.service"
    for link in (wants, requires):
        assert link.is_symlink()
        assert os.readlink(link).endswith("/pod@.service")
    # No [Install] wiring unless asked for.
    assert sorted(p.name for p in out.iterdir()) == [
        "multi-user.target.wants",
        "pod@plain.service.d",
        "pod@web.service.d",
        "shop.target.requires",
    ]
    assert not (out / "early").exists() and not (out / "late").exists()


def test_bad_manifest_is_logged_and_skipped(
    dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pods, out = dirs
    (pods / "web.yaml").write_text(WEB)
    (pods / "bad.yaml").write_text(BAD)
    (pods / "binary.yaml").write_bytes(b"\x00\xff" * 100)
    (pods / "unreadable.yaml").mkdir()  # not a file: ignored
    assert generator.main([str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"podman-sd-generator: {pods}/bad.yaml:5:49: spec.containers[0].ports[0]"
        ".containerPort: 0 is out of range (from 1 to 65535)",
        f"podman-sd-generator: {pods}/bad.yaml: skipped; pod@bad.service will not start",
        f"podman-sd-generator: {pods}/binary.yaml:1:1: invalid YAML: "
        "control characters are not allowed",
        f"podman-sd-generator: {pods}/binary.yaml: skipped; pod@binary.service will not start",
    ]
    assert (out / "pod@web.service.d" / "50-podman-sd.conf").exists()
    assert not (out / "pod@bad.service.d").exists()


def test_missing_pods_dir_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODMAN_SD_PODS_DIR", str(tmp_path / "none"))
    assert generator.main([str(tmp_path)]) == 0
    assert list(tmp_path.iterdir()) == []


def test_usage() -> None:
    assert generator.main([]) == 2


def test_rerun_replaces_links(dirs: tuple[Path, Path]) -> None:
    pods, out = dirs
    (pods / "web.yaml").write_text(WEB)
    assert generator.main([str(out)]) == 0
    assert generator.main([str(out)]) == 0


def test_description_escaping() -> None:
    # In YAML double quotes: a tab, then a backslash; then a specifier.
    pod = parse_pod(WEB.replace("Shop front, 100% uptime", "a\\tb\\\\c %n"), "web.yaml")
    assert "Description=a b\\\\c %%n\n" in generator.render_dropin(pod)


def test_runs_as_a_program(dirs: tuple[Path, Path]) -> None:
    pods, out = dirs
    (pods / "web.yaml").write_text(WEB)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run(
        [sys.executable, "-m", "podman_sd.generator", str(out), str(out), str(out)],
        env=env,
        check=True,
    )
    assert "Restart=on-failure" in dropin(out, "web")


def ordered_pod(name: str, after: str = "", requires: str = "") -> str:
    notes = "".join(
        f"    podman-sd.io/{key}: {value!r}\n"
        for key, value in (("after", after), ("requires", requires))
        if value
    )
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations:\n{notes}"
        "spec:\n  containers:\n  - {name: a, image: b}\n"
    )


def test_pods_ordered_in_a_circle_start_unordered_among_themselves(
    dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """systemd refuses a start whose ordering is cyclic ("Transaction order
    is cyclic") or drops a job: the generator says so once and leaves out the
    After= inside the circle, keeping the Wants=/Requires=."""
    pods, out = dirs
    for name, after, requires in (
        ("a", "b", ""),
        ("b", "", "c"),
        ("c", "a", ""),
        ("d", "a", ""),  # after the circle, not in it
    ):
        (pods / f"{name}.yaml").write_text(ordered_pod(name, after, requires))
    assert generator.main([str(out), str(out), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("in a circle") == 1
    assert "pods a, b, c: podman-sd.io/after and /requires order them in a circle " in err
    assert "(a -> b -> c -> a)" in err
    assert "After=pod@b.service" not in dropin(out, "a") and "Wants=pod@b.service" in dropin(
        out, "a"
    )
    assert "After=pod@c.service" not in dropin(out, "b")
    assert "Requires=pod@c.service" in dropin(out, "b")
    assert "After=pod@a.service" in dropin(out, "d")


def test_no_circle_no_complaint() -> None:
    chain = [parse_pod(ordered_pod(n, after), f"{n}.yaml") for n, after in (("x", "y"), ("y", "z"))]
    chain.append(parse_pod(ordered_pod("z"), "z.yaml"))
    assert generator.ordering_cycles(chain) == []
