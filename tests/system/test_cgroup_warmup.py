"""The cgroup warm-up of a start (runtime/cgroup_warmup.py): it writes only
into the cgroup its process already sits in, so systemd sees no change."""

from __future__ import annotations

import json

import pytest

from tests.testhost import REPO, TestHost

pytestmark = pytest.mark.system

# Run as a transient service: prints where the warm-up writes, how often it
# wrote in 0.2 s, and the process's cgroup before and after.
PROBE = f"""
import json, os, sys, time
sys.path.insert(0, {str(REPO)!r})
from podman_sd.runtime.cgroup_warmup import CgroupWarmup, own_cgroup_procs
before = open("/proc/self/cgroup").read()
warmup = CgroupWarmup().start()
time.sleep(0.2)
warmup.stop()
try:
    os.waitpid(-1, os.WNOHANG)
    reaped = False  # a child is left
except ChildProcessError:
    reaped = True
print(json.dumps({{"procs": own_cgroup_procs(), "writes": warmup.writes, "reaped": reaped,
                  "before": before, "after": open("/proc/self/cgroup").read()}}))
"""


def test_warmup_writes_only_where_the_process_already_is(testhost: TestHost) -> None:
    result = testhost.run(
        "systemd-run", "--wait", "--pipe", "--quiet", "--unit=warm", "/usr/bin/python3", "-c", PROBE
    )  # fmt: skip
    probe = json.loads(result.stdout)
    # The test host's own cgroup2 at /sys/fs/cgroup, not the outer host's
    # hierarchy that it also sees at /sys/fs/cgroup/unified.
    assert probe["procs"] == "/sys/fs/cgroup/system.slice/warm.service/cgroup.procs"
    assert probe["writes"] >= 10  # every few milliseconds
    assert probe["reaped"]  # the warm-up process is gone once stopped
    assert probe["before"] == probe["after"]
    assert "0::/system.slice/warm.service" in probe["after"].splitlines()


def test_warmup_gives_up_by_itself(testhost: TestHost) -> None:
    script = PROBE.replace("CgroupWarmup()", "CgroupWarmup(duration=0.05)")
    probe = json.loads(
        testhost.run(
            "systemd-run", "--wait", "--pipe", "--quiet", "/usr/bin/python3", "-c", script
        ).stdout
    )
    assert 1 <= probe["writes"] <= 25  # 0.05 s of writes, not 0.2 s
    assert probe["reaped"]
