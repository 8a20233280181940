"""The pod runtime in a booted systemd: namespaces, environment, users and
capabilities, volumes and their lifetimes, scope limits, init containers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from podman_sd.runtime import caps
from tests.system.podhelpers import (
    app_pid,
    gated_init_pod,
    journal_now,
    messages,
    one_app_pod,
    overlay_mounts,
    status,
    unit_property,
    wait_for,
    write_pod,
)
from tests.testhost import TestHost
from tests.testhost.images import accept_unsigned, build_busybox_layout

pytestmark = pytest.mark.system

IMAGE = "oci:/srv/images/busybox:latest"

MULTI = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: multi
  labels: {{tier: backend}}
spec:
  hostname: multihost
  terminationGracePeriodSeconds: 2
  hostAliases:
  - ip: 10.9.8.7
    hostnames: [db.internal]
  securityContext:
    fsGroup: 3000
    supplementalGroups: [4000]
    sysctls:
    - {{name: net.ipv4.ip_unprivileged_port_start, value: "100"}}
  initContainers:
  - name: first
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo first > /shared/order']
    volumeMounts: [{{name: scratch, mountPath: /shared}}]
  - name: second
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo second >> /shared/order']
    volumeMounts: [{{name: scratch, mountPath: /shared}}]
  containers:
  - name: web
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    workingDir: /srv/www
    env:
    - {{name: GREETING, value: hello}}
    - {{name: MESSAGE, value: "$(GREETING) world"}}
    - name: TIER
      valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['tier']"}}}}
    command: [sh, -c]
    args: ['echo "msg=$(MESSAGE) tier=$TIER cwd=$(pwd)"; echo web-data > /shared/from-web; exec sleep 1000']
    securityContext:
      runAsUser: 1000
      runAsGroup: 1000
      readOnlyRootFilesystem: true
    resources:
      limits: {{memory: 64Mi, cpu: 250m}}
      requests: {{memory: 32Mi, cpu: 100m}}
    volumeMounts:
    - {{name: scratch, mountPath: /shared}}
    - {{name: mem, mountPath: /cache}}
    - {{name: host, mountPath: /host, readOnly: true}}
    - {{name: host, mountPath: /sub, subPath: nested}}
  - name: sidecar
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'touch /written-by-sidecar; exec sleep 1000']
    securityContext:
      capabilities: {{add: [NET_ADMIN], drop: [CHOWN]}}
    volumeMounts:
    - {{name: scratch, mountPath: /shared}}
    - {{name: mem, mountPath: /cache}}
  volumes:
  - name: scratch
    emptyDir: {{}}
  - name: mem
    emptyDir: {{medium: Memory, sizeLimit: 16Mi}}
  - name: host
    hostPath: {{path: /srv/hostdata, type: DirectoryOrCreate}}
"""


@pytest.fixture(scope="module")
def host(installed_host: TestHost) -> Iterator[TestHost]:
    build_busybox_layout(installed_host)
    accept_unsigned(installed_host, "oci:/srv/images")
    installed_host.sh("mkdir -p /srv/hostdata && echo precious > /srv/hostdata/keep")
    write_pod(installed_host, "multi", MULTI)
    installed_host.run("systemctl", "start", "pod@multi")
    yield installed_host
    installed_host.run("systemctl", "stop", "pod@multi", check=False)


def proc(host: TestHost, pid: int, what: str) -> str:
    return host.run("cat", f"/proc/{pid}/{what}").stdout


def ns(host: TestHost, pid: int, kind: str) -> str:
    return host.run("readlink", f"/proc/{pid}/ns/{kind}").stdout.strip()


def status_field(host: TestHost, pid: int, field: str) -> str:
    for line in proc(host, pid, "status").splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def in_app(host: TestHost, pid: int, *argv: str) -> str:
    """Run ARGV inside the app's namespaces and root (as root, for inspection)."""
    return host.run("nsenter", f"--target={pid}", "--all", "--", *argv).stdout


def test_namespaces_are_shared_and_private_as_specified(host: TestHost) -> None:
    web, sidecar = app_pid(host, "multi", "web"), app_pid(host, "multi", "sidecar")
    for kind in ("net", "ipc", "uts"):
        assert ns(host, web, kind) == ns(host, sidecar, kind), kind
        assert ns(host, web, kind) != ns(host, 1, kind), kind
    for kind in ("mnt", "pid"):
        assert ns(host, web, kind) != ns(host, sidecar, kind), kind
        assert ns(host, web, kind) != ns(host, 1, kind), kind
    assert in_app(host, web, "hostname").strip() == "multihost"
    assert "10.9.8.7\tdb.internal" in in_app(host, web, "cat", "/etc/hosts")
    assert (
        in_app(host, web, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start").strip() == "100"
    )
    # The app is PID 1 of its own pid namespace.
    assert status_field(host, web, "NSpid").split()[-1] == "1"


def test_env_args_working_dir_and_expansion(host: TestHost) -> None:
    lines = wait_for(
        lambda: [
            m for m in messages(host, "pod@multi", "CONTAINER_NAME=web") if m.startswith("msg=")
        ]
    )
    assert lines == ["msg=hello world tier=backend cwd=/srv/www"]
    # HOME as runc sets it: from the passwd entry of the user the app runs as.
    for app, home in (("sidecar", "/root"), ("web", "/home/app")):
        environ = proc(host, app_pid(host, "multi", app), "environ").split("\0")
        assert f"HOME={home}" in environ, (app, environ)


def test_user_groups_and_capabilities(host: TestHost) -> None:
    web, sidecar = app_pid(host, "multi", "web"), app_pid(host, "multi", "sidecar")
    assert status_field(host, web, "Uid").split() == ["1000"] * 4
    assert status_field(host, web, "Gid").split() == ["1000"] * 4
    assert set(status_field(host, web, "Groups").split()) >= {"3000", "4000"}
    assert int(status_field(host, web, "CapEff"), 16) == 0
    assert status_field(host, web, "NoNewPrivs") == "1"
    # The seccomp filter (runtime/seccomp.py), in the apps and in exec.
    assert status_field(host, web, "Seccomp") == status_field(host, sidecar, "Seccomp") == "2"
    entered = host.run(
        "podman-sd", "exec", "multi", "sidecar", "--", "grep", "^Seccomp:", "/proc/self/status"
    )
    assert entered.stdout.split() == ["Seccomp:", "2"]
    caps = int(status_field(host, sidecar, "CapEff"), 16)
    assert caps & (1 << 12), "NET_ADMIN was added"
    assert not caps & (1 << 0), "CHOWN was dropped"
    assert not caps & (1 << 21), "SYS_ADMIN is never in the default set"
    assert int(status_field(host, sidecar, "CapBnd"), 16) == caps


def test_root_filesystems_private_writable_and_read_only(host: TestHost) -> None:
    web, sidecar = app_pid(host, "multi", "web"), app_pid(host, "multi", "sidecar")
    # The sidecar's write is in its own upper layer, invisible to web.
    assert in_app(host, sidecar, "ls", "/written-by-sidecar").strip() == "/written-by-sidecar"
    assert (
        host.run(
            "nsenter", f"--target={web}", "--all", "--", "ls", "/written-by-sidecar", check=False
        ).returncode
        != 0
    )
    result = host.run("nsenter", f"--target={web}", "--all", "--", "touch", "/x", check=False)
    assert "Read-only file system" in result.stderr
    assert "ro," in in_app(host, web, "grep", " /sys ", "/proc/self/mountinfo")


def test_volumes(host: TestHost) -> None:
    web, sidecar = app_pid(host, "multi", "web"), app_pid(host, "multi", "sidecar")
    assert in_app(host, sidecar, "cat", "/shared/order") == "first\nsecond\n"
    assert wait_for(lambda: in_app(host, sidecar, "cat", "/shared/from-web")) == "web-data\n"
    in_app(host, sidecar, "sh", "-c", "echo mem > /cache/m")
    assert in_app(host, web, "cat", "/cache/m") == "mem\n"
    assert "tmpfs" in in_app(host, web, "stat", "-f", "-c", "%T", "/cache")
    assert in_app(host, web, "cat", "/host/keep") == "precious\n"
    denied = host.run(
        "nsenter", f"--target={web}", "--all", "--", "sh", "-c", "echo x > /host/new", check=False
    )
    assert denied.returncode != 0
    assert host.run("test", "-d", "/srv/hostdata/nested").returncode == 0
    # fsGroup: the emptyDir belongs to group 3000 and is setgid.
    mode = in_app(host, web, "stat", "-c", "%g %A", "/shared").split()
    assert mode[0] == "3000" and mode[1][6] == "s"


def test_scope_properties_show_the_limits(host: TestHost) -> None:
    scope = "pod-multi-web.scope"
    assert unit_property(host, scope, "MemoryMax") == str(64 * 1024 * 1024)
    assert unit_property(host, scope, "MemoryLow") == str(32 * 1024 * 1024)
    assert unit_property(host, scope, "CPUQuotaPerSecUSec") == "250ms"
    assert unit_property(host, scope, "CPUWeight") == "4"
    assert unit_property(host, scope, "Slice") == "pod-multi.slice"
    assert unit_property(host, scope, "BindsTo") == "pod@multi.service"


def test_status_reports_apps_and_images(host: TestHost) -> None:
    data = status(host, "multi")
    assert data["state"] == "active"
    assert {a["name"] for a in data["apps"]} == {"web", "sidecar"}
    for app in data["apps"]:
        assert app["scope"] == f"pod-multi-{app['name']}.scope"
        assert app["image_digest"].startswith("sha256:")
    listing = host.run("podman-sd", "list").stdout
    assert "multi" in listing and "active" in listing


def test_exec_gets_exactly_what_the_app_has(host: TestHost) -> None:
    web, sidecar = app_pid(host, "multi", "web"), app_pid(host, "multi", "sidecar")
    out = host.run(
        "podman-sd", "exec", "multi", "web", "--", "sh", "-c",
        "grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs):' /proc/self/status; "
        "cat /proc/self/cgroup; pwd; echo $MESSAGE; "
        "cat /etc/hostname",
    ).stdout  # fmt: skip
    assert "Uid:\t1000\t1000\t1000\t1000" in out
    assert f"CapEff:\t{status_field(host, web, 'CapEff')}" in out
    assert f"CapBnd:\t{status_field(host, web, 'CapBnd')}" in out
    assert "NoNewPrivs:\t1" in out
    # At the root of the app's cgroup namespace: inside the app's scope.
    assert "0::/\n" in out
    assert "/srv/www\nhello world\nmultihost\n" in out
    # (A process that changed its uid may not read its own /proc/self/ns:
    # the root sidecar shows the namespaces.)
    script = (
        "grep CapEff /proc/self/status; for n in net mnt pid; do readlink /proc/self/ns/$n; done"
    )
    out = host.run("podman-sd", "exec", "multi", "sidecar", "--", "sh", "-c", script).stdout
    fields = out.split()
    assert fields[1] == status_field(host, sidecar, "CapEff")
    assert fields[2:] == [ns(host, sidecar, kind) for kind in ("net", "mnt", "pid")]
    assert (
        host.run(
            "podman-sd", "exec", "multi", "web", "--", "sh", "-c", "exit 3", check=False
        ).returncode
        == 3
    )
    missing = host.run("podman-sd", "exec", "multi", "nope", "--", "true", check=False)
    assert missing.returncode != 0 and "has no app 'nope'" in missing.stderr


def test_stop_removes_empty_dirs_and_keeps_host_paths(host: TestHost) -> None:
    host.run("systemctl", "stop", "pod@multi")
    assert host.run("test", "-e", "/var/lib/podman-sd/pods/multi", check=False).returncode != 0
    assert host.run("cat", "/srv/hostdata/keep").stdout == "precious\n"
    assert overlay_mounts(host) == []
    assert (
        host.run("grep", "-c", "podman-sd/pods", "/proc/1/mountinfo", check=False).stdout.strip()
        == "0"
    )


INIT_WRITES_CONFIG = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: initcfg
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  volumes:
  - name: cfg
    emptyDir: {{}}
  initContainers:
  - name: render
    image: {IMAGE}
    command: [sh, -c, "echo key=value > /cfg/app.conf && mkdir /cfg/d && echo in-d > /cfg/d/f"]
    volumeMounts: [{{name: cfg, mountPath: /cfg}}]
  containers:
  - name: app
    image: {IMAGE}
    command: [sleep, "1000"]
    volumeMounts:
    - {{name: cfg, mountPath: /etc/app.conf, subPath: app.conf}}
    - {{name: cfg, mountPath: /srv/d, subPath: d}}
    - {{name: cfg, mountPath: /srv/new, subPath: new}}
"""


def test_an_init_container_can_write_the_file_an_app_mounts_by_subpath(host: TestHost) -> None:
    """The kubelet's order: the apps' subPaths are looked at (and a missing
    one created, as a directory) only after the init containers ran."""
    write_pod(host, "initcfg", INIT_WRITES_CONFIG)
    host.run("systemctl", "start", "pod@initcfg")
    try:
        pid = app_pid(host, "initcfg", "app")
        assert in_app(host, pid, "cat", "/etc/app.conf") == "key=value\n"
        assert in_app(host, pid, "cat", "/srv/d/f") == "in-d\n"
        assert in_app(host, pid, "stat", "-c", "%F", "/srv/new") == "directory\n"
    finally:
        host.run("systemctl", "stop", "pod@initcfg")


def crashing_pod_with_scratch(name: str) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 0
  volumes:
  - name: scratch
    emptyDir: {{}}
  containers:
  - name: app
    image: {IMAGE}
    command: [sh, -c, "echo run >> /scratch/runs; echo runs=$(wc -l < /scratch/runs); sleep 1; exit 3"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
"""


def test_a_start_after_a_stop_during_the_restart_delay_is_a_new_pod(host: TestHost) -> None:
    """emptyDirs live as long as the pod, across systemd's restarts of it; a
    stop in the restart delay runs no clean-up, so the next start must know
    it is not a restart and begin with empty emptyDirs."""
    write_pod(host, "again", crashing_pod_with_scratch("again"))
    host.write_file(
        "/etc/systemd/system/pod@again.service.d/slow.conf", "[Service]\nRestartSec=3\n"
    )
    host.run("systemctl", "daemon-reload")
    try:
        host.run("systemctl", "start", "pod@again")
        # The first restart finds the first run's file: the same pod.
        assert wait_for(lambda: "runs=2" in messages(host, "pod@again"), timeout=20)
        wait_for(lambda: unit_property(host, "pod@again.service", "SubState") == "auto-restart")
        host.run("systemctl", "stop", "pod@again")
        assert host.run("test", "-e", "/var/lib/podman-sd/pods/again/volumes/scratch/runs",
                        check=False).returncode == 0  # fmt: skip
        since = journal_now(host)
        host.run("systemctl", "start", "pod@again")
        lines = wait_for(lambda: [m for m in messages(host, "pod@again", f"--since={since}")
                                  if m.startswith("runs=")])  # fmt: skip
        assert lines[0] == "runs=1"
    finally:
        host.run("systemctl", "stop", "pod@again")
        host.run("rm", "-rf", "/etc/systemd/system/pod@again.service.d")
        host.run("systemctl", "daemon-reload")
    assert host.run("test", "-e", "/var/lib/podman-sd/pods/again", check=False).returncode != 0


def test_a_running_init_container_can_be_entered_and_is_in_the_status(host: TestHost) -> None:
    host.run("rm", "-rf", "/srv/gate-gatedinit")
    write_pod(host, "gatedinit", gated_init_pod("gatedinit"))
    host.run("systemctl", "start", "--no-block", "pod@gatedinit")
    try:

        def current_apps() -> list[dict[str, Any]]:
            now = status(host, "gatedinit")  # not those of a last run
            return [] if now.get("last_run") else list(now.get("apps", []))

        running = wait_for(current_apps)
        assert [(a["name"], a["exit_code"]) for a in running] == [("wait", None)]
        entered = host.run("podman-sd", "exec", "gatedinit", "wait", "--", "ls", "/gate")
        assert entered.stdout == ""
        host.run("podman-sd", "exec", "gatedinit", "wait", "--", "touch", "/gate/open")
        wait_for(lambda: unit_property(host, "pod@gatedinit.service", "ActiveState") == "active")
        assert [a["name"] for a in status(host, "gatedinit")["apps"]] == ["app"]
    finally:
        host.run("systemctl", "stop", "pod@gatedinit")


def test_exec_never_gets_more_capabilities_than_the_app_was_started_with(host: TestHost) -> None:
    """An app's PID 1 can move into a user namespace of its own, where it holds
    every capability; `podman-sd exec` (and exec probes) run in the pod's
    user namespace, where those would be real: it gets the granted ones only."""
    write_pod(host, "ownuserns", one_app_pod("ownuserns", "exec unshare -U -r sleep 1000", grace=0))
    host.run("systemctl", "start", "pod@ownuserns")
    try:
        pid = app_pid(host, "ownuserns", "app")
        assert wait_for(lambda: "sleep" in proc(host, pid, "cmdline"))
        # The app itself now holds every capability in its own user namespace.
        assert int(status_field(host, pid, "CapEff"), 16) & (1 << 21)  # SYS_ADMIN
        entered = host.run(
            "podman-sd", "exec", "ownuserns", "app", "--", "grep", "Cap", "/proc/self/status"
        ).stdout
        fields = dict(line.split(":\t") for line in entered.splitlines())
        default = caps.mask(caps.DEFAULT_CAPABILITIES)
        assert int(fields["CapEff"], 16) == int(fields["CapBnd"], 16) == default, entered
    finally:
        host.run("systemctl", "stop", "pod@ownuserns")


def test_the_termination_log_cannot_fill_the_hosts_run(host: TestHost) -> None:
    """/dev/termination-log is writable by any user of the app: it lives on
    a small tmpfs of the pod's own, not on the host's /run."""
    script = (
        "dd if=/dev/zero of=/dev/termination-log bs=1k count=2048 2>/dev/null;"
        " echo wrote=$(wc -c < /dev/termination-log); printf 'why' > /dev/termination-log;"
        " exec sleep 1000"
    )
    write_pod(host, "bigmsg", one_app_pod("bigmsg", script, grace=0))
    host.run("systemctl", "start", "pod@bigmsg")
    try:
        lines = wait_for(
            lambda: [m for m in messages(host, "pod@bigmsg") if m.startswith("wrote=")]
        )
        assert int(lines[0].removeprefix("wrote=")) <= 64 * 1024, lines
        used = host.run("du", "-sk", "/run/podman-sd/pods/bigmsg").stdout.split()[0]
        assert int(used) < 256, used
    finally:
        host.run("systemctl", "stop", "pod@bigmsg")
