"""Probe thresholds, as the kubelet counts them."""

from __future__ import annotations

from podman_sd.runtime.probes import Probe

SPEC = {"initial_delay": 5, "period": 10, "timeout": 1, "success": 2, "failure": 3, "kind": "tcp"}


def test_first_run_waits_for_the_initial_delay() -> None:
    assert Probe("app", "liveness", SPEC, started=100.0).due == 105.0


def test_success_threshold_must_be_reached_in_a_row() -> None:
    probe = Probe("app", "readiness", SPEC, 0.0)
    assert probe.finished(True, 1.0) is None
    assert probe.finished(False, 2.0) is None
    assert probe.finished(True, 3.0) is None
    assert probe.finished(True, 4.0) == "passed"
    assert probe.due == 14.0  # next run one period later


def test_failure_threshold_in_a_row_fails_once() -> None:
    probe = Probe("app", "liveness", SPEC, 0.0)
    assert [probe.finished(False, t) for t in (1.0, 2.0)] == [None, None]
    assert probe.finished(True, 3.0) is None  # resets the count
    assert [probe.finished(False, t) for t in (4.0, 5.0, 6.0, 7.0)] == [None, None, "failed", None]


def test_a_passed_probe_fails_again_after_the_threshold() -> None:
    probe = Probe("app", "readiness", {**SPEC, "success": 1}, 0.0)
    assert probe.finished(True, 1.0) == "passed"
    assert [probe.finished(False, t) for t in (2.0, 3.0, 4.0)] == [None, None, "failed"]
    assert probe.finished(True, 5.0) == "passed"
