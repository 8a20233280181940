"""Boot the machine's own systemd as PID 1 of a throwaway test host.

Run as ``python3 -m tests.testhost.boot NAME CGROUP REPO`` by ``TestHost``; it
never returns while the test host runs. The recipe is DESIGN.md's "Test
environment": the booting process sits in a fresh child cgroup, unshares the
mount, pid, cgroup, uts, ipc and net namespaces, and forks PID 1 of the new pid
namespace. PID 1 builds a root from an overlay of ``/`` whose upper layer is a
tmpfs that only this mount namespace sees, so nothing the test host writes
reaches the real ``/etc``, ``/tmp``, ``/var`` or ``/run``; then it pivots into
it and execs systemd.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from podman_sd import syscalls as sc

# Mounted over /mnt, a directory every Debian root has: inside this private
# mount namespace the mount is invisible to the real host, and it vanishes
# with the namespace, so nothing needs removing afterwards.
SCRATCH = Path("/mnt")


def _set_parent_death_signal() -> None:
    # If our parent (the test process) dies without tearing us down, the
    # kernel kills us; PID 1's death then ends the whole pid namespace.
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)


def _build_root(name: str, repo: Path) -> Path:
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount("testhost", SCRATCH, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=0755")
    upper, work, root = SCRATCH / "upper", SCRATCH / "work", SCRATCH / "root"
    for d in (upper, work, root):
        d.mkdir()
    sc.mount("overlay", root, "overlay", 0, f"lowerdir=/,upperdir={upper},workdir={work}")
    sc.mount("/dev", root / "dev", None, sc.MS_BIND | sc.MS_REC)
    sc.mount("/sys", root / "sys", None, sc.MS_BIND | sc.MS_REC)
    # A cgroup2 mounted after unsharing the cgroup namespace is rooted at our
    # own child cgroup: systemd manages that subtree and nothing above it.
    sc.mount(
        "cgroup2", root / "sys/fs/cgroup", "cgroup2", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    )
    sc.mount("proc", root / "proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    sc.mount("tmpfs", root / "run", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=0755")
    # podman-sd's state must live on a real filesystem: overlayfs can neither
    # be an overlay upper layer nor hold whiteout device nodes.
    state = root / "var/lib/podman-sd"
    state.mkdir(parents=True, exist_ok=True)
    sc.mount("podman-sd-state", state, "tmpfs", sc.MS_NOSUID, "mode=0755")
    (root / "etc/hostname").write_text(f"{name}\n")
    # /dev is the machine's: the host's journald would copy the machine's
    # whole kernel log (/dev/kmsg) into its journal, in every test host.
    journald = root / "etc/systemd/journald.conf.d"
    journald.mkdir(parents=True, exist_ok=True)
    (journald / "testhost.conf").write_text("[Journal]\nReadKMsg=no\n")
    # The checkout must be visible inside (the tests `make install` from
    # it). The overlay shows only the root file system: a checkout on
    # another one (a tmpfs, a second disk) is bound in at the same path. So
    # is one under /tmp or /var/tmp, which the booted systemd empties
    # (tmpfiles.d "D", --remove at boot; its removal stops at mount points).
    emptied = any(repo.is_relative_to(d) for d in (Path("/tmp"), Path("/var/tmp")))
    if emptied or os.stat(repo).st_dev != os.stat("/").st_dev:
        inside = root / str(repo).lstrip("/")
        inside.mkdir(parents=True, exist_ok=True)
        sc.mount(repo, inside, None, sc.MS_BIND | sc.MS_REC)
    # pivot_root(".", ".") stacks the old root over the new one; detaching
    # it leaves no path back to the real root and needs no directory.
    os.chdir(root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    return root


def main() -> None:
    name, cgroup = sys.argv[1], Path(sys.argv[2])
    _set_parent_death_signal()
    (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    sc.unshare(
        sc.CLONE_NEWNS
        | sc.CLONE_NEWPID
        | sc.CLONE_NEWCGROUP
        | sc.CLONE_NEWUTS
        | sc.CLONE_NEWIPC
        | sc.CLONE_NEWNET
    )
    pid = os.fork()
    if pid:
        # Relay termination to PID 1 and exit when it does.
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _set_parent_death_signal()
    sc.sethostname(name)
    _build_root(name, Path(sys.argv[3]))
    env = {
        "container": "podman-sd-test",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
    os.execve(
        "/lib/systemd/systemd",
        ["/lib/systemd/systemd", "--unit=basic.target", "--show-status=no"],
        env,
    )


if __name__ == "__main__":
    main()
