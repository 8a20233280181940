"""Every supported field is parsed into the model with its Kubernetes default."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from podman_sd.manifest import (
    Capabilities,
    ContainerPort,
    DNSConfigOption,
    DNSPolicy,
    EnvVar,
    ExecAction,
    FieldPath,
    FieldRef,
    HostAlias,
    HostPathType,
    HTTPHeader,
    Protocol,
    PullPolicy,
    RestartPolicy,
    StorageMedium,
    Sysctl,
    URIScheme,
    VolumeMount,
)

from .helpers import MINIMAL, container, pod, spec

FULL = """\
apiVersion: v1
kind: Pod
metadata:
  name: full
  namespace: prod
  labels:
    app: full
    app.kubernetes.io/part-of: shop
  annotations:
    note: anything at all
    podman-sd.io/description: The full pod
    podman-sd.io/after: db, cache
    podman-sd.io/requires: store
    podman-sd.io/wanted-by: multi-user.target
    podman-sd.io/required-by: shop.target
    podman-sd.io/restart-sec: "7"
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 12
  activeDeadlineSeconds: 3600
  hostNetwork: false
  hostPID: false
  hostIPC: true
  shareProcessNamespace: true
  hostname: shop
  subdomain: internal
  hostAliases:
  - ip: 10.0.0.2
    hostnames: [db.local, db]
  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.1, "2001:db8::1"]
    searches: [example.com]
    options:
    - name: ndots
      value: "2"
    - name: edns0
  securityContext:
    runAsUser: 1000
    runAsGroup: 1001
    runAsNonRoot: true
    fsGroup: 2000
    supplementalGroups: [4000, 4001]
    sysctls:
    - name: net.ipv4.ip_unprivileged_port_start
      value: "80"
  resources:
    limits: {cpu: "2", memory: 1Gi}
    requests: {cpu: 500m, memory: 512Mi}
  volumes:
  - name: data
    emptyDir: {medium: Memory, sizeLimit: 64Mi}
  - name: disk
    emptyDir: {}
  - name: host
    hostPath: {path: /srv/data, type: DirectoryOrCreate}
  - name: untyped
    hostPath: {path: /srv/other}
  initContainers:
  - name: init
    image: docker.io/library/busybox:1.36
    command: [sh, -c, "echo init"]
  containers:
  - name: app
    image: registry.example.com:5000/shop/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    imagePullPolicy: Never
    command: [/app]
    args: [--port, "8080"]
    workingDir: /srv
    env:
    - name: PLAIN
      value: text
    - name: EMPTY
    - name: NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: NS
      valueFrom: {fieldRef: {fieldPath: metadata.namespace, apiVersion: v1}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    ports:
    - {containerPort: 8080, protocol: TCP, name: http}
    - {containerPort: 5353, protocol: UDP}
    - {containerPort: 9999, protocol: SCTP, hostPort: 0}
    volumeMounts:
    - {name: data, mountPath: /data, readOnly: true, subPath: sub/dir}
    - {name: host, mountPath: /host}
    resources:
      limits: {cpu: 1.5, memory: 256Mi, ephemeral-storage: 1G}
      requests: {cpu: 100m, memory: 128Mi, ephemeral-storage: 500M}
    securityContext:
      runAsUser: 1234
      runAsGroup: 1234
      runAsNonRoot: true
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      privileged: false
      capabilities: {add: [NET_BIND_SERVICE, cap_sys_time], drop: [ALL]}
    livenessProbe:
      httpGet:
        path: /healthz
        port: http
        host: 127.0.0.1
        scheme: HTTPS
        httpHeaders: [{name: X-Probe, value: "1"}]
      initialDelaySeconds: 5
      timeoutSeconds: 2
      periodSeconds: 7
      successThreshold: 1
      failureThreshold: 4
      terminationGracePeriodSeconds: 9
    readinessProbe:
      tcpSocket: {port: 8080, host: localhost}
      successThreshold: 2
    startupProbe:
      exec: {command: [cat, /ready]}
    lifecycle:
      postStart: {exec: {command: [/bin/started]}}
      preStop: {exec: {command: [/bin/stopping, now]}}
    stdin: true
    tty: true
    terminationMessagePath: /tmp/last-words
"""


def test_full_pod() -> None:
    p = pod(FULL, "/etc/podman-sd/pods/full.yaml")
    assert p.name == "full"
    assert p.namespace == "prod"
    assert p.source == Path("/etc/podman-sd/pods/full.yaml")
    assert dict(p.labels) == {"app": "full", "app.kubernetes.io/part-of": "shop"}
    assert p.annotations["note"] == "anything at all"
    assert p.warnings == ()

    u = p.unit
    assert u.description == "The full pod"
    assert u.after == ("db", "cache")
    assert u.requires == ("store",)
    assert u.wanted_by == ("multi-user.target",)
    assert u.required_by == ("shop.target",)
    assert u.restart_sec == 7

    s = p.spec
    assert s.restart_policy is RestartPolicy.ON_FAILURE
    assert s.termination_grace_period_seconds == 12
    assert s.active_deadline_seconds == 3600
    assert (s.host_network, s.host_pid, s.host_ipc) == (False, False, True)
    assert s.share_process_namespace is True
    assert (s.hostname, s.subdomain) == ("shop", "internal")
    assert s.host_aliases == (HostAlias("10.0.0.2", ("db.local", "db")),)
    assert s.dns_policy is DNSPolicy.NONE
    assert s.dns_config is not None
    assert s.dns_config.nameservers == ("192.0.2.1", "2001:db8::1")
    assert s.dns_config.searches == ("example.com",)
    assert s.dns_config.options == (DNSConfigOption("ndots", "2"), DNSConfigOption("edns0"))
    psc = s.security_context
    assert (psc.run_as_user, psc.run_as_group, psc.run_as_non_root) == (1000, 1001, True)
    assert psc.fs_group == 2000
    assert psc.supplemental_groups == (4000, 4001)
    assert psc.sysctls == (Sysctl("net.ipv4.ip_unprivileged_port_start", "80"),)
    assert s.resources is not None
    assert s.resources.limits.cpu is not None and s.resources.limits.cpu.value == 2
    assert s.resources.requests.memory is not None
    assert s.resources.requests.memory.value == 512 * 2**20

    data, disk, host, untyped = s.volumes
    assert data.empty_dir is not None and data.empty_dir.medium is StorageMedium.MEMORY
    assert data.empty_dir.size_limit is not None and data.empty_dir.size_limit.ceil() == 2**26
    assert disk.empty_dir is not None and disk.empty_dir.medium is StorageMedium.DEFAULT
    assert disk.empty_dir.size_limit is None and disk.host_path is None
    assert host.host_path is not None and host.host_path.path == "/srv/data"
    assert host.host_path.type is HostPathType.DIRECTORY_OR_CREATE
    assert untyped.host_path is not None and untyped.host_path.type is HostPathType.UNSET
    assert s.volume("host") is host

    (init,) = s.init_containers
    assert init.command == ("sh", "-c", "echo init")
    assert init.image_pull_policy is PullPolicy.IF_NOT_PRESENT
    assert [c.name for c in s.all_containers()] == ["init", "app"]

    (c,) = s.containers
    assert c.image.startswith("registry.example.com:5000/shop/app@sha256:")
    assert c.image_pull_policy is PullPolicy.NEVER
    assert c.command == ("/app",)
    assert c.args == ("--port", "8080")
    assert c.working_dir == "/srv"
    assert c.env == (
        EnvVar("PLAIN", "text"),
        EnvVar("EMPTY"),
        EnvVar("NAME", value_from=FieldRef(FieldPath.NAME)),
        EnvVar("NS", value_from=FieldRef(FieldPath.NAMESPACE)),
        EnvVar("APP", value_from=FieldRef(FieldPath.LABEL, key="app")),
        EnvVar("IP", value_from=FieldRef(FieldPath.POD_IP)),
    )
    assert c.ports == (
        ContainerPort(8080, None, Protocol.TCP, "http"),
        ContainerPort(5353, None, Protocol.UDP, None),
        ContainerPort(9999, None, Protocol.SCTP, None),
    )
    assert c.volume_mounts == (
        VolumeMount("data", "/data", True, "sub/dir"),
        VolumeMount("host", "/host", False, None),
    )
    r = c.resources
    assert r.limits.cpu is not None and r.limits.cpu.milli() == 1500
    assert r.limits.memory is not None and r.limits.memory.value == 256 * 2**20
    assert r.limits.ephemeral_storage is not None
    assert r.limits.ephemeral_storage.value == 10**9
    assert r.requests.cpu is not None and r.requests.cpu.value == Fraction(1, 10)
    assert r.requests.ephemeral_storage is not None
    sc = c.security_context
    assert (sc.run_as_user, sc.run_as_group, sc.run_as_non_root) == (1234, 1234, True)
    assert sc.read_only_root_filesystem is True
    assert sc.allow_privilege_escalation is False
    assert sc.privileged is False
    assert sc.capabilities == Capabilities(add=("NET_BIND_SERVICE", "SYS_TIME"), drop=("ALL",))

    lp = c.liveness_probe
    assert lp is not None and lp.http_get is not None
    assert lp.http_get.path == "/healthz" and lp.http_get.port == "http"
    assert lp.http_get.host == "127.0.0.1" and lp.http_get.scheme is URIScheme.HTTPS
    assert lp.http_get.http_headers == (HTTPHeader("X-Probe", "1"),)
    assert (lp.initial_delay_seconds, lp.timeout_seconds, lp.period_seconds) == (5, 2, 7)
    assert (lp.success_threshold, lp.failure_threshold) == (1, 4)
    assert lp.termination_grace_period_seconds == 9
    rp = c.readiness_probe
    assert rp is not None and rp.tcp_socket is not None
    assert (rp.tcp_socket.port, rp.tcp_socket.host) == (8080, "localhost")
    assert rp.success_threshold == 2
    sp = c.startup_probe
    assert sp is not None and sp.exec == ExecAction(("cat", "/ready"))
    assert (sp.timeout_seconds, sp.period_seconds, sp.failure_threshold) == (1, 10, 3)
    assert c.lifecycle.post_start is not None
    assert c.lifecycle.post_start.exec.command == ("/bin/started",)
    assert c.lifecycle.pre_stop is not None
    assert c.lifecycle.pre_stop.exec.command == ("/bin/stopping", "now")
    assert (c.stdin, c.tty) == (True, True)
    assert c.termination_message_path == "/tmp/last-words"


def test_defaults() -> None:
    p = pod(MINIMAL)
    assert p.namespace == "default"
    assert p.labels == {} and p.annotations == {}
    s = p.spec
    assert s.restart_policy is RestartPolicy.ALWAYS
    assert s.termination_grace_period_seconds == 30
    assert s.active_deadline_seconds is None
    assert not (s.host_network or s.host_pid or s.host_ipc or s.share_process_namespace)
    assert s.hostname is None and s.dns_policy is DNSPolicy.CLUSTER_FIRST
    assert s.dns_config is None and s.resources is None
    assert s.volumes == () and s.init_containers == ()
    (c,) = s.containers
    assert c.command is None and c.args is None
    assert c.env == () and c.ports == () and c.volume_mounts == ()
    assert c.working_dir is None
    assert c.liveness_probe is None and c.readiness_probe is None and c.startup_probe is None
    assert c.lifecycle.post_start is None and c.lifecycle.pre_stop is None
    assert c.security_context.run_as_user is None
    assert c.security_context.capabilities is None
    assert c.resources.limits.cpu is None
    assert (c.stdin, c.tty) == (False, False)
    assert c.termination_message_path == "/dev/termination-log"


def test_name_from_file_stem() -> None:
    text = MINIMAL.replace("metadata:\n  name: test\n", "metadata: {}\n")
    assert pod(text, "/x/from-file.yaml").name == "from-file"
    text = MINIMAL.replace("metadata:\n  name: test\n", "")
    assert pod(text, "other.yaml").name == "other"


def test_empty_command_list_is_kept() -> None:
    c = container("command: []\nargs: []\n").spec.containers[0]
    assert c.command == () and c.args == ()


def test_pull_policy_defaults() -> None:
    def policy(image: str) -> PullPolicy:
        return (
            container("").spec.containers[0].image_pull_policy
            if not image
            else pod(MINIMAL.replace("busybox:1.36", image)).spec.containers[0].image_pull_policy
        )

    assert policy("busybox") is PullPolicy.ALWAYS
    assert policy("busybox:latest") is PullPolicy.ALWAYS
    assert policy("busybox:1.36") is PullPolicy.IF_NOT_PRESENT
    assert policy("localhost:5000/busybox") is PullPolicy.ALWAYS
    assert policy("localhost:5000/busybox:1") is PullPolicy.IF_NOT_PRESENT
    digest = "sha256:" + "a" * 64
    assert policy(f"busybox@{digest}") is PullPolicy.IF_NOT_PRESENT
    assert policy(f"busybox:latest@{digest}") is PullPolicy.ALWAYS
    assert policy("oci:/var/lib/images/busybox:latest") is PullPolicy.ALWAYS
    assert policy("oci:/var/lib/images/busybox:1.36") is PullPolicy.IF_NOT_PRESENT
    assert policy("oci-archive:/tmp/busybox.tar") is PullPolicy.ALWAYS
    assert policy("docker://docker.io/library/busybox:1.36") is PullPolicy.IF_NOT_PRESENT


def test_hostpath_types() -> None:
    for kind in HostPathType:
        p = spec(
            f"""\
            volumes:
            - name: v
              hostPath: {{path: /x, type: "{kind.value}"}}
            containers:
            - {{name: a, image: busybox}}
            """
        )
        assert p.spec.volumes[0].host_path is not None
        assert p.spec.volumes[0].host_path.type is kind


def test_restart_policies_and_dns_policies() -> None:
    for policy in RestartPolicy:
        text = MINIMAL + f"  restartPolicy: {policy.value}\n"
        assert pod(text).spec.restart_policy is policy
    for dns in DNSPolicy:
        extra = "  dnsConfig: {nameservers: [1.1.1.1]}\n" if dns is DNSPolicy.NONE else ""
        text = MINIMAL + f"  dnsPolicy: {dns.value}\n" + extra
        assert pod(text).spec.dns_policy is dns


def test_null_fields_are_unset() -> None:
    # kubectl writes `creationTimestamp: null` and `resources: {}`.
    text = """\
        apiVersion: v1
        kind: Pod
        metadata:
          creationTimestamp: null
          labels: {run: test}
          name: test
        spec:
          containers:
          - image: nginx
            name: test
            resources: {}
            env: null
          dnsPolicy: ClusterFirst
          restartPolicy: Always
          nodeSelector: null
        status: {}
        """
    p = pod(text)
    assert p.warnings == ()
    assert p.spec.containers[0].env == ()


def test_positions_recorded() -> None:
    p = container("workingDir: /srv\n")
    assert p.positions["spec.containers[0].workingDir"] == (9, 17)


def test_warnings_are_kept_on_the_pod() -> None:
    p = pod(MINIMAL + "  nodeName: node-1\n  schedulerName: custom\n")
    assert [(w.path, w.line) for w in p.warnings] == [
        ("spec.nodeName", 9),
        ("spec.schedulerName", 10),
    ]
