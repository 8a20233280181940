"""A throwaway test host: the machine's own systemd booted as PID 1 in fresh
namespaces over a tmpfs-backed overlay of ``/`` (see ``boot.py``).

    with TestHost() as host:
        host.run("systemctl", "is-system-running")

Commands run inside through ``nsenter`` into every namespace of the test
host's PID 1, with their process moved into the test host's cgroup tree, so
that killing PID 1 and removing that tree leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[2]


def cgroup2_root() -> Path:
    """Where the cgroup2 hierarchy is mounted (hybrid hosts use 'unified')."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return Path(fields[1])
    raise RuntimeError("no cgroup2 hierarchy is mounted on this machine")


CGROUP_PREFIX = "podman-sd-testhost-"

INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "SYSTEMD_PAGER": "cat",
    "SYSTEMD_COLORS": "0",
    "TERM": "dumb",
}


class CommandFailed(AssertionError):
    pass


class TestHost:
    __test__ = False  # not a pytest test class

    def __init__(self, name: str | None = None, *, boot_timeout: float = 10.0) -> None:
        self.name = name or f"th-{uuid.uuid4().hex[:8]}"
        self.cgroup = cgroup2_root() / f"{CGROUP_PREFIX}{self.name}"
        self.boot_timeout = boot_timeout
        self.boot_seconds = 0.0
        self._booter: subprocess.Popen[bytes] | None = None
        self.pid1 = 0

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> TestHost:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        self.cgroup.mkdir()
        self._booter = subprocess.Popen(
            [sys.executable, "-m", "tests.testhost.boot", self.name, str(self.cgroup), str(REPO)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": INSIDE_ENV["PATH"], "PYTHONPATH": str(REPO)},
        )
        self.pid1 = self._wait_for_pid1()
        self._wait_until_running(started + self.boot_timeout)
        self.boot_seconds = time.monotonic() - started

    def _wait_for_pid1(self) -> int:
        assert self._booter is not None
        children = Path(f"/proc/{self._booter.pid}/task/{self._booter.pid}/children")
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self._booter.poll() is not None:
                raise RuntimeError(
                    f"test host {self.name}: booter exited ({self._booter.returncode})"
                )
            try:
                pids = children.read_text().split()
            except FileNotFoundError:
                pids = []
            if pids:
                try:
                    # Until PID 1 has exec'd, its exe is python's.
                    if os.readlink(f"/proc/{pids[0]}/exe").endswith("/systemd"):
                        return int(pids[0])
                except OSError:
                    pass  # in the middle of execve

            time.sleep(0.01)
        raise RuntimeError(f"test host {self.name}: systemd did not start")

    def _wait_until_running(self, deadline: float) -> None:
        state = ""
        while time.monotonic() < deadline:
            result = self.run("systemctl", "is-system-running", check=False, timeout=5)
            state = result.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"test host {self.name}: not running after boot (state {state!r})")

    def stop(self) -> None:
        """Kill everything in the test host and remove its cgroup tree."""
        if self.pid1:
            # SIGKILL to a pid namespace's init ends every process in it; the
            # mount namespace, and with it the overlay and tmpfs, goes too.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid1, signal.SIGKILL)
            self.pid1 = 0
        if self._booter is not None:
            try:
                self._booter.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._booter.kill()
                self._booter.wait()
            self._booter = None
        remove_cgroup_tree(self.cgroup)

    # -- running commands inside -------------------------------------------

    def _enter_cgroup(self) -> None:
        # Runs in the child between fork and exec (subprocess preexec_fn).
        (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))

    def run(
        self,
        *argv: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ARGV inside the test host; returns its exit status and output."""
        if not self.pid1:
            raise RuntimeError(f"test host {self.name} is not running")
        command = [
            "nsenter", f"--target={self.pid1}",
            "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup",
            # --wd alone takes PID 1's working directory, its "/"; --wd=/
            # would be opened before entering, i.e. the real host's root.
            "--root", "--wd",
            "--", *argv,
        ]  # fmt: skip
        result = subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env={**INSIDE_ENV, **(env or {})},
            preexec_fn=self._enter_cgroup,
        )
        if check and result.returncode != 0:
            raise CommandFailed(
                f"in test host {self.name}: {shlex.join(argv)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside the test host (``set -e`` is on)."""
        return self.run("/bin/sh", "-ec", script, **kwargs)  # type: ignore[arg-type]

    def write_file(self, path: str, content: str, mode: int = 0o644) -> None:
        self.run(
            "/bin/sh", "-ec", 'mkdir -p "$(dirname "$1")"; cat > "$1"; chmod "$2" "$1"', "sh",
            path, f"{mode:o}", input=content,
        )  # fmt: skip

    def install_project(self) -> None:
        """``make install`` of this checkout inside the test host."""
        self.run("make", "-C", str(REPO), "install", "--no-print-directory")
        self.run("systemctl", "daemon-reload")


def remove_cgroup_tree(top: Path, timeout: float = 10.0) -> None:
    """rmdir a cgroup and its descendants, deepest first, once they are empty."""
    if not top.exists():
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
                os.rmdir(dirpath)
            return
        except FileNotFoundError:
            continue
        except OSError:
            # EBUSY while killed processes are still being reaped.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def run_checked(argv: Sequence[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout
