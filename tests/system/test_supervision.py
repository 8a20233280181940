"""Supervision by systemd: restart policies, crash loops, graceful stop,
kill -9 of the launcher, repeated start/stop without leaks, and logs."""

from __future__ import annotations

import json
import time

import pytest

from tests.system.podhelpers import (
    IMAGE,
    app_pid,
    journal,
    messages,
    one_app_pod,
    overlay_mounts,
    status,
    unit_property,
    wait_for,
    write_pod,
)
from tests.testhost import TestHost

pytestmark = pytest.mark.system


def state(host: TestHost, pod: str) -> str:
    return unit_property(host, f"pod@{pod}.service", "ActiveState")


def test_always_restarts_the_pod_and_a_crash_loop_ends_failed(host: TestHost) -> None:
    write_pod(host, "crashy", one_app_pod("crashy", "echo starting; sleep 0.2; exit 3"))
    host.run("systemctl", "start", "pod@crashy")
    assert wait_for(lambda: state(host, "crashy") == "failed", timeout=30)
    # systemd 252 keeps Result=exit-code and says why in the unit's journal.
    assert any("Start request repeated too quickly" in m for m in messages(host, "pod@crashy"))
    assert int(unit_property(host, "pod@crashy.service", "NRestarts")) == 5
    assert messages(host, "pod@crashy", "CONTAINER_NAME=app").count("starting") >= 5
    assert any("app app exited with status 3" in m for m in messages(host, "pod@crashy"))
    # How the last run ended, not "stopping: ..." frozen in `systemctl status`.
    last = unit_property(host, "pod@crashy.service", "StatusText")
    assert last == "0/1 apps running; failed: app exited 3", last


def test_on_failure_restarts_only_failures(host: TestHost) -> None:
    write_pod(host, "okonce", one_app_pod("okonce", "echo done; exit 0", policy="OnFailure"))
    host.run("systemctl", "start", "pod@okonce")
    assert wait_for(lambda: state(host, "okonce") == "inactive")
    assert unit_property(host, "pod@okonce.service", "NRestarts") == "0"
    # The first run leaves a flag in an emptyDir and fails; the restarted
    # pod finds it: emptyDir content survives a restart of the pod's apps.
    script = "if [ -e /data/flag ]; then echo second; exec sleep 1000; fi; touch /data/flag; exit 1"
    manifest = (
        one_app_pod("failonce", script, policy="OnFailure")
        .replace("    command:", "    volumeMounts: [{name: data, mountPath: /data}]\n    command:")
        .replace("  containers:", "  volumes:\n  - name: data\n    emptyDir: {}\n  containers:")
    )
    write_pod(host, "failonce", manifest)
    host.run("systemctl", "start", "pod@failonce", check=False)
    assert wait_for(lambda: "second" in messages(host, "pod@failonce", "CONTAINER_NAME=app"))
    assert state(host, "failonce") == "active"
    assert unit_property(host, "pod@failonce.service", "NRestarts") == "1"
    # A deliberate stop removes the pod, and with it the emptyDir.
    host.run("systemctl", "stop", "pod@failonce")
    assert host.run("test", "-e", "/var/lib/podman-sd/pods/failonce", check=False).returncode != 0


def test_never_does_not_restart(host: TestHost) -> None:
    write_pod(host, "once", one_app_pod("once", "exit 7", policy="Never"))
    host.run("systemctl", "start", "pod@once", check=False)
    assert wait_for(lambda: state(host, "once") == "failed")
    assert unit_property(host, "pod@once.service", "NRestarts") == "0"
    # The exit that failed the pod, named once (it is also the last).
    assert (
        unit_property(host, "pod@once.service", "StatusText")
        == "0/1 apps running; failed: app exited 7"
    )


def test_graceful_stop_gives_the_grace_period_to_an_app_that_traps_sigterm(host: TestHost) -> None:
    script = "trap 'echo got TERM; sleep 1; echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
    write_pod(host, "polite", one_app_pod("polite", script, grace=10))
    host.run("systemctl", "start", "pod@polite")
    assert wait_for(lambda: "ready" in messages(host, "pod@polite", "CONTAINER_NAME=app"))
    started = time.monotonic()
    host.run("systemctl", "stop", "pod@polite")
    took = time.monotonic() - started
    assert 0.9 < took < 8, took
    app_lines = messages(host, "pod@polite", "CONTAINER_NAME=app")
    assert app_lines[-2:] == ["got TERM", "bye"]
    assert any("app app exited with status 0" in m for m in messages(host, "pod@polite"))


def test_an_app_that_ignores_sigterm_is_killed_after_the_grace_period(host: TestHost) -> None:
    write_pod(
        host, "stubborn", one_app_pod("stubborn", "trap '' TERM; echo ready; sleep 1000", grace=3)
    )
    host.run("systemctl", "start", "pod@stubborn")
    pid = app_pid(host, "stubborn", "app")
    started = time.monotonic()
    host.run("systemctl", "stop", "pod@stubborn")
    took = time.monotonic() - started
    assert 2.8 < took < 10, took
    assert host.run("test", "-e", f"/proc/{pid}", check=False).returncode != 0
    assert any("did not stop within 3 s; killing it" in m for m in messages(host, "pod@stubborn"))


def test_kill_9_of_the_launcher_leaves_no_app_running(host: TestHost) -> None:
    write_pod(
        host, "victim", one_app_pod("victim", "echo up; exec sleep 1000", policy="Never", grace=1)
    )
    host.run("systemctl", "start", "pod@victim")
    pid = app_pid(host, "victim", "app")
    launcher = unit_property(host, "pod@victim.service", "MainPID")
    host.run("kill", "-9", launcher)
    assert wait_for(lambda: host.run("test", "-e", f"/proc/{pid}", check=False).returncode != 0)
    assert wait_for(lambda: unit_property(host, "pod-victim-app.scope", "ActiveState") != "active")
    # The next start cleans up what the killed launcher left, and works.
    host.run("systemctl", "reset-failed", "pod@victim")
    host.run("systemctl", "start", "pod@victim")
    new_pid = app_pid(host, "victim", "app")
    assert new_pid != pid
    host.run("systemctl", "stop", "pod@victim")
    assert overlay_mounts(host) == []


def test_a_failed_scope_left_with_the_apps_name_does_not_stop_a_start(host: TestHost) -> None:
    # A scope that failed (here: its runtime ran out) stays loaded until
    # reset; creating the app's scope under that name meets UnitExists.
    host.run(
        "systemd-run", "--scope", "--unit=pod-leftover-app.scope", "-p", "RuntimeMaxSec=1",
        "sleep", "30", check=False,
    )  # fmt: skip
    assert unit_property(host, "pod-leftover-app.scope", "ActiveState") == "failed"
    write_pod(host, "leftover", one_app_pod("leftover", "exec sleep 1000", grace=0))
    host.run("systemctl", "start", "pod@leftover")
    assert unit_property(host, "pod-leftover-app.scope", "ActiveState") == "active"
    assert app_pid(host, "leftover", "app") > 0
    host.run("systemctl", "stop", "pod@leftover")


def test_fifty_start_stop_cycles_leak_nothing(host: TestHost) -> None:
    write_pod(host, "cycle", one_app_pod("cycle", "exec sleep 1000", grace=0))
    before_ns = host.run(
        "sh", "-c", "ls -d /proc/[0-9]*/ns/net | xargs -n1 readlink | sort -u | wc -l"
    ).stdout
    for _ in range(50):
        host.run("systemctl", "start", "pod@cycle")
        host.run("systemctl", "stop", "pod@cycle")
    assert overlay_mounts(host) == []
    assert (
        host.run("grep", "-c", "podman-sd/pods", "/proc/1/mountinfo", check=False).stdout.strip()
        == "0"
    )
    scopes = host.run("find", "/sys/fs/cgroup", "-name", "pod-cycle*.scope").stdout.split()
    assert scopes == []
    assert host.run("ls", "/run/podman-sd/pods").stdout.strip() == ""
    after_ns = host.run(
        "sh", "-c", "ls -d /proc/[0-9]*/ns/net | xargs -n1 readlink | sort -u | wc -l"
    ).stdout
    assert after_ns == before_ns


def test_active_deadline_stops_the_pod_and_it_stays_failed(host: TestHost) -> None:
    write_pod(
        host,
        "deadline",
        one_app_pod("deadline", "exec sleep 1000", grace=0, extra="  activeDeadlineSeconds: 2\n"),
    )
    started = time.monotonic()
    host.run("systemctl", "start", "pod@deadline")
    assert wait_for(lambda: state(host, "deadline") == "failed", timeout=15)
    assert 1.5 < time.monotonic() - started < 10
    time.sleep(1)
    assert unit_property(host, "pod@deadline.service", "NRestarts") == "0"
    assert any("activeDeadlineSeconds exceeded" in m for m in messages(host, "pod@deadline"))


def test_a_hundred_thousand_log_lines_all_reach_the_journal(host: TestHost) -> None:
    write_pod(
        host,
        "chatty",
        one_app_pod("chatty", "seq 1 100000; echo done >&2; exec sleep 1000", grace=0),
    )
    host.run("systemctl", "start", "pod@chatty")
    last = [
        "journalctl",
        "-u",
        "pod@chatty",
        "CONTAINER_NAME=app",
        "PRIORITY=6",
        "-n",
        "1",
        "-o",
        "cat",
    ]
    assert wait_for(lambda: host.run(*last).stdout.strip() == "100000", timeout=120, interval=0.5)
    out = host.run(
        "journalctl",
        "-u",
        "pod@chatty",
        "CONTAINER_NAME=app",
        "PRIORITY=6",
        "-o",
        "cat",
        "--no-pager",
    ).stdout.split("\n")[:-1]
    assert out == [str(i) for i in range(1, 100001)]
    sample = journal(host, "pod@chatty", "CONTAINER_NAME=app", "-n", "3", "PRIORITY=6")
    for entry in sample:
        assert entry["SYSLOG_IDENTIFIER"] == "app"
        assert entry["PODMAN_SD_POD"] == "chatty"
        assert len(entry["CONTAINER_ID_FULL"]) == 64
        assert entry["IMAGE_NAME"] == IMAGE
    host.run("systemctl", "stop", "pod@chatty")


def test_termination_message_reaches_the_journal_and_status(host: TestHost) -> None:
    script = "echo 'disk full on /data' > /dev/termination-log; exit 2"
    write_pod(host, "lastwords", one_app_pod("lastwords", script, policy="Never"))
    host.run("systemctl", "start", "pod@lastwords", check=False)
    assert wait_for(lambda: state(host, "lastwords") == "failed")
    assert "app app termination message: disk full on /data" in messages(host, "pod@lastwords")


def test_fallback_to_logs_on_error_takes_the_end_of_the_output(host: TestHost) -> None:
    """terminationMessagePolicy: FallbackToLogsOnError: an app that failed
    without a message gets the end of its output (at most 80 lines and 2048
    bytes, as in Kubernetes); one that succeeded gets none."""
    for name, code in (("fellback", 3), ("fineexit", 0)):
        script = f"echo starting >&2; sleep 0.3; seq 1 100; exit {code}"
        manifest = one_app_pod(name, script, policy="Never").replace(
            "    command:", "    terminationMessagePolicy: FallbackToLogsOnError\n    command:"
        )
        write_pod(host, name, manifest)
        host.run("systemctl", "start", f"pod@{name}", check=False)

        def ended(pod: str = name) -> bool:
            return state(host, pod) in ("failed", "inactive")

        assert wait_for(ended)
        (app,) = status(host, name)["apps"]
        if code:
            # 101 lines, stderr's first: the last 80 are 21 to 100.
            assert app["termination_message"] == "\n".join(map(str, range(21, 101)))
        else:
            assert "termination_message" not in app


def test_privileged_and_escalation_settings(host: TestHost) -> None:
    manifest = one_app_pod("priv", "exec sleep 1000", grace=0).replace(
        "    command:", "    securityContext: {privileged: true}\n    command:"
    )
    write_pod(host, "priv", manifest)
    host.run("systemctl", "start", "pod@priv")
    pid = app_pid(host, "priv", "app")
    status = host.run("cat", f"/proc/{pid}/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    # Every capability the machine has (PID 1 holds them all; these machines
    # withhold CAP_SYS_RESOURCE).
    init = host.run("grep", "CapEff", "/proc/1/status").stdout.split()[1]
    assert fields["CapEff"].strip() == init
    assert fields["NoNewPrivs"].strip() == "0"
    assert fields["Seccomp"].strip() == "0"  # no filter, as podman --privileged
    host.run("systemctl", "stop", "pod@priv")


def test_a_failing_init_container_fails_the_start_with_its_exit_code(host: TestHost) -> None:
    manifest = one_app_pod("initfail", "echo never", policy="Never").replace(
        "  containers:",
        "  initContainers:\n"
        "  - name: setup\n"
        f"    image: {IMAGE}\n"
        "    imagePullPolicy: IfNotPresent\n"
        "    command: [sh, -c, 'echo setting up; exit 5']\n"
        "  containers:",
    )
    write_pod(host, "initfail", manifest)
    assert host.run("systemctl", "start", "pod@initfail", check=False).returncode != 0
    assert "init container setup failed with exit status 5" in unit_property(
        host, "pod@initfail.service", "StatusText"
    )
    lines = messages(host, "pod@initfail")
    assert "setting up" in lines and "never" not in lines
    # The pod ended: its last state tells how the init container ended.
    status = json.loads(host.run("podman-sd", "status", "--json", "initfail", check=False).stdout)
    assert [(a["name"], a["exit_code"]) for a in status["apps"]] == [("setup", 5)]
    assert any("init container setup failed with exit status 5" in m for m in lines)


def slow_init_pod(name: str, seconds: float) -> str:
    return one_app_pod(name, "echo app runs; exec sleep 1000", policy="Never").replace(
        "  containers:",
        "  initContainers:\n"
        "  - name: setup\n"
        f"    image: {IMAGE}\n"
        "    imagePullPolicy: IfNotPresent\n"
        f"    command: [sleep, '{seconds}']\n"
        "  containers:",
    )


def test_an_init_container_longer_than_the_start_helpers_live(host: TestHost) -> None:
    """The launcher's helper processes (D-Bus worker, cgroup warm-up) are its
    children too: reaped while an init container runs, they must not break
    the start afterwards."""
    write_pod(host, "slowinit", slow_init_pod("slowinit", 1.5))
    host.run("systemctl", "start", "pod@slowinit")
    try:
        assert host.run("systemctl", "is-active", "pod@slowinit").stdout.strip() == "active"
        assert wait_for(lambda: "app runs" in messages(host, "pod@slowinit"))
        assert not any("Traceback" in m for m in messages(host, "pod@slowinit"))
    finally:
        host.run("systemctl", "stop", "pod@slowinit")


def test_a_stop_while_an_init_container_runs_is_a_stop_not_a_failure(host: TestHost) -> None:
    write_pod(host, "stopinit", slow_init_pod("stopinit", 30))
    host.run("systemctl", "start", "--no-block", "pod@stopinit")
    wait_for(lambda: unit_property(host, "pod-stopinit-setup.scope", "ActiveState") == "active")
    host.run("systemctl", "stop", "pod@stopinit")
    # Stopped on purpose: inactive, not failed, and nothing of the pod left.
    assert unit_property(host, "pod@stopinit.service", "ActiveState") == "inactive"
    assert unit_property(host, "pod@stopinit.service", "Result") == "success"
    assert host.run("systemctl", "list-units", "--no-legend", "pod-stopinit*").stdout.strip() == ""
    lines = messages(host, "pod@stopinit")
    assert any("stopped while init container setup ran" in m for m in lines), lines
    assert not any("Traceback" in m or "error" in m for m in lines), lines


def many_apps_pod(name: str, count: int) -> str:
    apps = "".join(
        f"  - name: app{i}\n    image: {IMAGE}\n    imagePullPolicy: IfNotPresent\n"
        "    command: [sleep, '1000']\n"
        for i in range(count)
    )
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n"
        f"spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n{apps}"
    )


def test_a_stop_while_the_apps_start_is_a_stop_not_a_failure(host: TestHost) -> None:
    """`systemctl stop` lands while a pod's 30 apps go into their scopes:
    the started ones are stopped, the unit ends inactive with success."""
    write_pod(host, "stopstart", many_apps_pod("stopstart", 30))
    host.run("systemctl", "start", "pod@stopstart")  # plan compiled: the next start is quick
    host.run("systemctl", "stop", "pod@stopstart")
    host.run("systemctl", "start", "--no-block", "pod@stopstart")
    wait_for(
        lambda: unit_property(host, "pod-stopstart-app0.scope", "ActiveState") == "active",
        interval=0.005,
    )
    host.run("systemctl", "stop", "pod@stopstart")
    assert unit_property(host, "pod@stopstart.service", "ActiveState") == "inactive"
    assert unit_property(host, "pod@stopstart.service", "Result") == "success"
    assert host.run("systemctl", "list-units", "--no-legend", "pod-stopstart*").stdout.strip() == ""
    lines = messages(host, "pod@stopstart")
    assert not any("error" in m or "Traceback" in m for m in lines), lines


def test_signals_sent_to_the_pod_reach_its_apps(host: TestHost) -> None:
    """`systemctl kill -s HUP pod@NAME` asks the apps (e.g. to reload), as
    `podman kill -s HUP` would; it does not tear the pod down."""
    script = (
        "trap 'echo got HUP' HUP; trap 'echo got USR1' USR1; echo ready; "
        "while :; do sleep 0.1; done"
    )
    write_pod(host, "signals", one_app_pod("signals", script, policy="Never"))
    host.run("systemctl", "start", "pod@signals")
    try:
        wait_for(lambda: "ready" in messages(host, "pod@signals"))
        supervisor = unit_property(host, "pod@signals.service", "MainPID")
        host.run("systemctl", "kill", "-s", "HUP", "pod@signals")
        host.run("systemctl", "kill", "-s", "USR1", "pod@signals")
        wait_for(lambda: "got USR1" in messages(host, "pod@signals"))
        lines = messages(host, "pod@signals")
        assert "got HUP" in lines
        assert unit_property(host, "pod@signals.service", "ActiveState") == "active"
        assert unit_property(host, "pod@signals.service", "MainPID") == supervisor
    finally:
        host.run("systemctl", "stop", "pod@signals")


def test_status_of_a_running_pod_whose_manifest_was_removed(host: TestHost) -> None:
    write_pod(host, "orphan", one_app_pod("orphan", "exec sleep 1000", policy="Never"))
    host.run("systemctl", "start", "pod@orphan")
    try:
        host.run("rm", "/etc/podman-sd/pods/orphan.yaml")
        status = json.loads(host.run("podman-sd", "status", "--json", "orphan").stdout)
        assert status["state"] == "active" and [a["name"] for a in status["apps"]] == ["app"]
    finally:
        host.run("systemctl", "stop", "pod@orphan")
    result = host.run("podman-sd", "status", "orphan", check=False)
    assert result.returncode == 1 and "no pod 'orphan'" in result.stderr


def test_an_apps_last_output_reaches_the_journal_before_its_exit_line(host: TestHost) -> None:
    """The supervisor relays what an app wrote last before it says the app
    exited, for apps and init containers alike. Its own lines reach journald
    the way the apps' lines do (with 300 lines of output, one on stderr used
    to land among them)."""
    script = "echo line1; seq 1 300; echo line2 >&2; exit 3"
    manifest = one_app_pod("lastout", script, policy="Never").replace(
        "  containers:",
        "  initContainers:\n"
        "  - name: setup\n"
        f"    image: {IMAGE}\n"
        "    imagePullPolicy: IfNotPresent\n"
        "    command: [sh, -c, 'echo init1; echo init2 >&2']\n"
        "  containers:",
    )
    write_pod(host, "lastout", manifest)
    host.run("systemctl", "start", "pod@lastout", check=False)
    assert wait_for(lambda: state(host, "lastout") == "failed")
    lines = messages(host, "pod@lastout")
    init_exit = lines.index("app setup exited with status 0")
    app_exit = lines.index("app app exited with status 3")
    assert lines.index("init1") < init_exit and lines.index("init2") < init_exit, lines
    assert init_exit < lines.index("line1") < app_exit, lines
    assert lines.index("300") < app_exit and lines.index("line2") < app_exit, lines


def test_status_of_an_ended_pod_shows_how_each_app_ended(host: TestHost) -> None:
    """The runtime directory goes when the pod ends; its last state stays for
    `status`, and the summary names the exit that failed the pod, not the
    last one (an exit 0 after it)."""
    apps = "".join(
        f"  - name: {name}\n    image: {IMAGE}\n    imagePullPolicy: IfNotPresent\n"
        f"    command: [sh, -c, 'sleep {delay}; exit {code}']\n"
        for name, delay, code in (("a", 0, 4), ("b", 0.4, 5), ("c", 0.8, 0))
    )
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: term\n"
        f"spec:\n  restartPolicy: Never\n  containers:\n{apps}"
    )
    write_pod(host, "term", manifest)
    host.run("systemctl", "start", "pod@term", check=False)
    assert wait_for(lambda: state(host, "term") == "failed")
    summary = "0/3 apps running; failed: a exited 4; last exit: c exited 0"
    assert unit_property(host, "pod@term.service", "StatusText") == summary
    assert host.run("test", "-e", "/run/podman-sd/pods/term", check=False).returncode != 0
    result = host.run("podman-sd", "status", "--json", "term", check=False)
    assert result.returncode == 3  # not running
    status = json.loads(result.stdout)
    assert status["state"] == "failed" and status["last_run"] is True
    assert status["status"] == summary
    assert {a["name"]: a["exit_code"] for a in status["apps"]} == {"a": 4, "b": 5, "c": 0}
    text = host.run("podman-sd", "status", "term", check=False).stdout
    assert f"pod term: failed (failed), {summary}" in text
    assert "last run:" in text
    rows = text.splitlines()[4:]  # after the header of the table
    exits = {row.split()[0]: row.split()[2] for row in rows}
    assert exits == {"a": "4", "b": "5", "c": "0"}, text
    listed = host.run("podman-sd", "list").stdout
    assert any(line.split()[:3] == ["term", "failed", "0"] for line in listed.splitlines())
    # A run that ends before its apps run (here: a manifest that no longer
    # parses) is not shown with the apps of the run before.
    write_pod(host, "term", manifest.replace("containers:", "containerz:"))
    host.run("systemctl", "reset-failed", "pod@term")
    host.run("systemctl", "start", "pod@term", check=False)
    assert wait_for(lambda: state(host, "term") == "failed")
    status = json.loads(host.run("podman-sd", "status", "--json", "term", check=False).stdout)
    assert status["apps"] == [] and status["last_run"] is False


def test_cleanup_by_hand_refuses_a_running_pod(host: TestHost) -> None:
    """`podman-sd cleanup` is the unit's ExecStopPost=: run by hand on a
    running pod it would stop its slice and remove its runtime state."""
    write_pod(host, "busy", one_app_pod("busy", "exec sleep 1000"))
    host.run("systemctl", "start", "pod@busy")
    try:
        refused = host.run("podman-sd", "cleanup", "busy", check=False)
        assert refused.returncode == 1, refused
        assert refused.stderr == (
            "podman-sd: error: pod@busy.service is active: "
            "stop it first (systemctl stop pod@busy.service)\n"
        )
        assert state(host, "busy") == "active"
        assert status(host, "busy")["apps"][0]["exit_code"] is None
    finally:
        host.run("systemctl", "stop", "pod@busy")
    host.run("podman-sd", "cleanup", "busy")  # stopped: nothing to refuse


def test_logs_follow_ends_when_the_pod_has_ended(host: TestHost) -> None:
    """As `podman logs -f` with its container (journalctl -f never ends)."""
    write_pod(host, "brief", one_app_pod("brief", "echo one; sleep 2; echo two", policy="Never"))
    host.run("systemctl", "start", "pod@brief")
    followed = host.run("podman-sd", "logs", "-f", "brief", "app", timeout=30)
    assert followed.stdout == "one\ntwo\n"
    assert state(host, "brief") == "inactive"
