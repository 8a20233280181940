"""Finding a process's cgroup v2 directory, and ending a cgroup's processes."""

from __future__ import annotations

import os
from pathlib import Path

from podman_sd.runtime.cgroup import cgroup_dir, kill_all


def test_a_process_is_found_in_the_directory_that_lists_it() -> None:
    directory = cgroup_dir(os.getpid())
    assert directory is not None
    assert str(os.getpid()) in Path(directory, "cgroup.procs").read_text().split()


def test_a_process_that_is_gone_has_none() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert cgroup_dir(pid) is None


def test_a_cgroup_that_is_gone_is_nothing_to_end(tmp_path: Path) -> None:
    kill_all(str(tmp_path / "removed.scope"))  # no error, nothing killed
