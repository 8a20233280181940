"""The walking skeleton end to end: a manifest in /etc, `systemctl start
pod@hello`, the app in its own scope and namespaces, its output in the
journal, and a clean stop."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.system.podhelpers import journal, messages, overlay_mounts, wait_for
from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout

pytestmark = pytest.mark.system

HELLO = """\
apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: greeter
    image: {image}
    command: ["/bin/sh", "-c"]
    args:
    - echo "hello from $GREETING"; echo "to stderr" >&2; exec sleep 1000
    env:
    - name: GREETING
      value: podman-sd
"""


@pytest.fixture(scope="module")
def host(installed_host: TestHost) -> Iterator[TestHost]:
    image = build_busybox_layout(installed_host)
    accept_unsigned(installed_host, "oci:/srv/images")
    installed_host.write_file("/etc/podman-sd/pods/hello.yaml", HELLO.format(image=image))
    installed_host.run("systemctl", "daemon-reload")
    yield installed_host


def app_pids(host: TestHost, scope: str) -> list[int]:
    out = host.run("systemctl", "show", "-P", "ControlGroup", scope).stdout.strip()
    if not out:
        return []
    procs = host.run("cat", f"/sys/fs/cgroup{out}/cgroup.procs", check=False).stdout
    return [int(p) for p in procs.split()]


def test_hello_runs_in_a_scope_logs_to_the_journal_and_stops_cleanly(host: TestHost) -> None:
    host.run("systemctl", "start", "pod@hello")
    # `systemctl start` returned: the launcher has sent READY=1.
    assert host.run("systemctl", "is-active", "pod@hello").stdout.strip() == "active"

    scope = "pod-hello-greeter.scope"
    cgroup = host.run("systemctl", "show", "-P", "ControlGroup", scope).stdout.strip()
    assert "/pod.slice/pod-hello.slice/" in cgroup, cgroup
    assert host.run("systemctl", "show", "-P", "BindsTo", scope).stdout.split() == [
        "pod@hello.service"
    ]
    pids = wait_for(lambda: app_pids(host, scope))
    assert pids, "no process in the app's scope"
    app = pids[0]
    # The app has its own mount and pid namespaces, and sees the image's root.
    for ns in ("mnt", "pid"):
        own = host.run("readlink", f"/proc/{app}/ns/{ns}").stdout
        init = host.run("readlink", f"/proc/1/ns/{ns}").stdout
        assert own != init, f"the app shares the host's {ns} namespace"
    assert host.run("test", "-x", f"/proc/{app}/root/bin/busybox", check=False).returncode == 0
    mounts = host.run("cat", f"/proc/{app}/mountinfo").stdout
    assert " / / " in mounts and "overlay" in mounts.split(" / / ")[1].splitlines()[0]

    entries = wait_for(
        lambda: [e for e in journal(host, "pod@hello") if e.get("CONTAINER_NAME") == "greeter"]
    )
    by_message = {e["MESSAGE"]: e for e in entries}
    assert "hello from podman-sd" in by_message, [e["MESSAGE"] for e in entries]
    out = by_message["hello from podman-sd"]
    err = by_message["to stderr"]
    assert out["PRIORITY"] == "6" and err["PRIORITY"] == "3"
    assert out["SYSLOG_IDENTIFIER"] == "greeter"
    assert out["PODMAN_SD_POD"] == "hello"
    assert out["IMAGE_NAME"].startswith("oci:/srv/images/busybox")
    assert len(out["CONTAINER_ID_FULL"]) == 64
    assert out["CONTAINER_ID"] == out["CONTAINER_ID_FULL"][:12]
    assert out["_SYSTEMD_UNIT"] == "pod@hello.service"

    # `podman-sd logs` reads the same lines back.
    assert (
        host.run("podman-sd", "logs", "hello", "greeter").stdout
        == "hello from podman-sd\nto stderr\n"
    )
    assert "greeter" in host.run("podman-sd", "logs", "-n", "1", "hello").stdout
    # As `podman logs --since/--until/-t` takes them.
    recent = host.run("podman-sd", "logs", "--since", "1h", "hello", "greeter").stdout
    assert recent == "hello from podman-sd\nto stderr\n"
    later = ["--since", "2099-01-01T00:00:00Z"]
    assert host.run("podman-sd", "logs", *later, "hello", "greeter").stdout == ""
    assert host.run("podman-sd", "logs", "--until", "10m", "hello").stdout == ""
    stamped = host.run("podman-sd", "logs", "-t", "hello", "greeter").stdout.splitlines()
    assert re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\S* .*hello from podman-sd$", stamped[0]
    )
    # A pod or an app that is not there is an error, not an empty log; a
    # name that is not a pod name is never passed on (`*` globs units).
    for argv, said in (
        (["logs", "nosuch"], "no pod 'nosuch'"),
        (["logs", "nosuch"], "does not exist (what it wrote: journalctl -u pod@nosuch)"),
        (["logs", "hello", "nosuch"], "pod hello has no app 'nosuch' (its apps: greeter)"),
        (["logs", "*"], "'*' is not a pod name"),
        (["status", "../hello"], "'../hello' is not a pod name"),
        (["exec", "../hello", "greeter", "--", "true"], "'../hello' is not a pod name"),
    ):
        result = host.run("podman-sd", *argv, check=False)
        assert (result.returncode, result.stdout) == (1, ""), (argv, result)
        assert result.stderr.startswith("podman-sd: error: "), argv
        assert said in result.stderr, argv
        assert result.stderr.count("\n") == 1, argv
    wrong = host.run("podman-sd", "logs", "-n", "-1", "hello", check=False)
    assert wrong.returncode == 2 and "'-1' is not a number of lines" in wrong.stderr

    started = time.monotonic()
    host.run("systemctl", "stop", "pod@hello")
    # sh as PID 1 of its namespace ignores SIGTERM: it is killed after the
    # 3 s grace period, not at once and not after the 45 s unit timeout.
    assert 2.5 < time.monotonic() - started < 20
    assert host.run("systemctl", "is-active", "pod@hello", check=False).stdout.strip() == "inactive"
    assert host.run("test", "-e", f"/proc/{app}", check=False).returncode != 0
    assert app_pids(host, scope) == []
    assert overlay_mounts(host) == []
    assert host.run("ls", "/run/podman-sd/pods").stdout.strip() == ""
    # No unit of the pod is left either: neither its scopes nor its slice.
    assert wait_for(
        lambda: (
            host.run("systemctl", "list-units", "--no-legend", "pod-hello*").stdout.strip() == ""
        )
    )


def test_invalid_yaml_fails_the_start_with_one_clear_line(host: TestHost) -> None:
    host.write_file("/etc/podman-sd/pods/broken.yaml", "apiVersion: v1\nkind: Pod\nspec: [\n")
    result = host.run("systemctl", "start", "pod@broken", check=False)
    assert result.returncode != 0
    lines = messages(host, "pod@broken", "SYSLOG_IDENTIFIER=podman-sd")
    errors = [m for m in lines if "error" in m]
    assert errors and "broken.yaml:" in errors[0], lines
    assert not any("Traceback" in m for m in lines)
    status = host.run(
        "systemctl", "status", "pod@broken", "--no-pager", "-n", "20", check=False
    ).stdout
    assert "broken.yaml:" in status
    assert host.run("ls", "/run/podman-sd/pods").stdout.strip() == ""


def test_missing_image_fails_the_start_with_one_clear_line(host: TestHost) -> None:
    host.write_file(
        "/etc/podman-sd/pods/noimage.yaml",
        HELLO.replace("name: hello", "name: noimage").format(
            image="oci:/srv/images/nothing:latest"
        ),
    )
    result = host.run("systemctl", "start", "pod@noimage", check=False)
    assert result.returncode != 0
    lines = messages(host, "pod@noimage", "SYSLOG_IDENTIFIER=podman-sd")
    assert any("/srv/images/nothing" in m and "error" in m for m in lines), lines
    why = host.run("systemctl", "show", "-P", "StatusText", "pod@noimage").stdout
    assert why.startswith("failed: ") and "/srv/images/nothing" in why, why
    assert not any("Traceback" in m for m in lines)
    assert host.run("systemctl", "list-units", "--no-legend", "pod-noimage*").stdout.strip() == ""


def test_a_command_missing_from_the_image_fails_the_start_with_one_clear_line(
    host: TestHost,
) -> None:
    manifest = HELLO.replace("name: hello", "name: nocmd").format(
        image="oci:/srv/images/busybox:latest"
    )
    manifest = manifest.replace('command: ["/bin/sh", "-c"]', 'command: ["/bin/no-such-program"]')
    host.write_file("/etc/podman-sd/pods/nocmd.yaml", manifest)
    result = host.run("systemctl", "start", "pod@nocmd", check=False)
    assert result.returncode != 0
    lines = messages(host, "pod@nocmd", "SYSLOG_IDENTIFIER=podman-sd")
    assert any(
        "app greeter: /bin/no-such-program: no such file in the image" in m for m in lines
    ), lines
    assert not any("Traceback" in m or "Exception ignored" in m for m in lines), lines
    assert host.run("systemctl", "list-units", "--no-legend", "pod-nocmd*").stdout.strip() == ""
    assert host.run("ls", "/run/podman-sd/pods").stdout.strip() == ""


def test_logs_give_back_bytes_that_are_not_text(host: TestHost) -> None:
    """As `podman logs` does: output that is not UTF-8 comes back as written,
    not as journalctl's "[9B blob data]"."""
    manifest = HELLO.replace("name: hello", "name: binary").format(
        image="oci:/srv/images/busybox:latest"
    )
    manifest = manifest.replace(
        'echo "hello from $GREETING"; echo "to stderr" >&2; exec sleep 1000',
        r"printf 'caf\351\n'; exec sleep 1000",
    )
    host.write_file("/etc/podman-sd/pods/binary.yaml", manifest)
    host.run("systemctl", "daemon-reload")
    host.run("systemctl", "start", "pod@binary")
    try:
        raw = wait_for(
            lambda: host.sh("podman-sd logs binary greeter | od -An -c").stdout.split() or None
        )
        assert raw == ["c", "a", "f", "351", "\\n"], raw
        # Every app, each line after the app's name: the same bytes.
        line = "greeter.*: $(printf 'caf\\351')$"
        every = host.sh(f'podman-sd logs binary | LC_ALL=C grep -c "{line}"', check=False)
        assert every.stdout.strip() == "1", host.run("podman-sd", "logs", "binary").stdout
    finally:
        host.run("systemctl", "stop", "pod@binary")


def test_launch_by_hand_is_refused(host: TestHost) -> None:
    """Run outside its unit, the launcher's scopes would pull the unit in
    (BindsTo=) and two launchers would fight over one pod."""
    result = host.run("podman-sd", "launch", "hello", check=False)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "podman-sd: error: podman-sd launch is the main process of pod@hello.service: "
        "use systemctl start pod@hello\n"
    )
    assert host.run("systemctl", "is-active", "pod@hello", check=False).stdout.strip() != "active"
