"""`podman-sd status` of a pod that ended: its last state, kept when the
runtime directory goes (ExecStopPost=), with each app's exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from podman_sd import paths
from podman_sd.errors import ManifestError
from podman_sd.status import format_status, keep_last_state, last_state_path, pod_status

STATE: dict[str, Any] = {
    "pod": "term",
    "launcher_pid": 10,
    "status": "0/3 apps running; failed: a exited 4; last exit: c exited 0",
    "apps": [
        {"name": "a", "pid": 11, "exit_code": 4, "scope": "pod-term-a.scope", "image": "x"},
        {"name": "b", "pid": 12, "exit_code": 5, "scope": "pod-term-b.scope", "image": "x"},
        {"name": "c", "pid": 13, "exit_code": 0, "scope": "pod-term-c.scope", "image": "x"},
    ],
}


class FakeSystemd:
    def __init__(self, **props: Any) -> None:
        self.props = props

    def unit_properties(self, unit: str, names: tuple[str, ...]) -> dict[str, Any]:
        return dict(self.props)


FAILED = FakeSystemd(ActiveState="failed", SubState="failed", NRestarts=0, MainPID=0, StatusText="")


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, name in (("RUNTIME", "run"), ("STATE", "lib"), ("CONFIG", "etc")):
        monkeypatch.setenv(f"PODMAN_SD_{variable}_DIR", str(tmp_path / name))
    (tmp_path / "lib").mkdir()


def run_state(state: dict[str, Any] = STATE) -> None:
    runtime = paths.pod_runtime_dir("term")
    runtime.mkdir(parents=True, exist_ok=True)
    (runtime / "state.json").write_text(json.dumps(state))


def end_pod() -> None:
    """What the launcher's cleanup does: keep the last state, remove the rest."""
    keep_last_state("term")
    shutil.rmtree(paths.pod_runtime_dir("term"), ignore_errors=True)


def test_an_ended_pod_shows_its_last_runs_apps_and_exits() -> None:
    run_state()
    end_pod()
    status = pod_status("term", FAILED)  # type: ignore[arg-type]
    assert status["last_run"] is True
    assert [(a["name"], a["exit_code"]) for a in status["apps"]] == [("a", 4), ("b", 5), ("c", 0)]
    # systemd's STATUS= is gone (the unit started again), the state has it.
    assert status["status"] == STATE["status"]
    text = format_status(status)
    assert "failed: a exited 4" in text and "last run:" in text
    assert [line.split()[2] for line in text.splitlines()[4:]] == ["4", "5", "0"]


def test_systemds_status_text_comes_first() -> None:
    run_state()
    end_pod()
    systemd = FakeSystemd(ActiveState="failed", SubState="failed", StatusText="from systemd")
    assert pod_status("term", systemd)["status"] == "from systemd"  # type: ignore[arg-type]


def test_an_app_the_supervisor_did_not_see_end_has_an_unknown_exit() -> None:
    """kill -9 of the supervisor: the state says the apps ran."""
    running = {**STATE, "apps": [{**STATE["apps"][0], "exit_code": None}]}
    run_state(running)
    end_pod()
    status = pod_status("term", FAILED)  # type: ignore[arg-type]
    assert status["apps"][0]["exit_code"] is None
    assert format_status(status).splitlines()[-1].split()[2] == "?"


def test_a_running_pod_shows_its_running_apps() -> None:
    run_state({**STATE, "apps": [{"name": "new", "pid": 20, "exit_code": None}]})
    end_pod()  # an earlier run, kept
    run_state({**STATE, "apps": [{"name": "now", "pid": 30, "exit_code": None}]})
    systemd = FakeSystemd(ActiveState="active", SubState="running", StatusText="1/1 apps running")
    status = pod_status("term", systemd)  # type: ignore[arg-type]
    assert status["last_run"] is False
    assert [a["name"] for a in status["apps"]] == ["now"]
    assert "last run:" not in format_status(status)


def test_a_run_that_ended_before_its_apps_ran_forgets_the_run_before() -> None:
    run_state()
    end_pod()
    assert last_state_path("term").exists()
    paths.pod_runtime_dir("term").mkdir(parents=True)  # a run without state.json
    end_pod()
    assert not last_state_path("term").exists()
    status = pod_status("term", FAILED)  # type: ignore[arg-type]
    assert status["apps"] == [] and status["last_run"] is False


def test_keeping_refuses_a_name_that_is_not_a_pod_name() -> None:
    with pytest.raises(ManifestError):
        keep_last_state("../x")


def test_only_files_named_as_pods_are_pods() -> None:
    from podman_sd.status import known_pods

    paths.pods_dir().mkdir(parents=True)
    for name in ("web", ".hidden", "Web", "a_b", "-x"):
        (paths.pods_dir() / f"{name}.yaml").write_text("")
    (paths.runtime_dir() / "pods" / "db").mkdir(parents=True)
    assert known_pods() == ["db", "web"]
