"""The apps' seccomp filter, installed in a forked child and tried."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from podman_sd import syscalls as sc
from podman_sd.runtime import seccomp

pytestmark = pytest.mark.skipif(not seccomp.supported(), reason="the filter is for x86-64")


def calls_in_a_filtered_child(*numbers: int) -> list[int]:
    """The errno of each raw system call NUMBER (with zero arguments), 0 if
    it succeeded, in a child that installed the filter."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.install()
            libc = ctypes.CDLL(None, use_errno=True)
            results = []
            for number in numbers:
                ctypes.set_errno(0)
                result = libc.syscall(ctypes.c_long(number), 0, 0, 0, 0, 0)
                results.append(ctypes.get_errno() if result == -1 else 0)
            os.write(write_end, ",".join(map(str, results)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    answer = os.read(read_end, 4096).decode()
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return [int(x) for x in answer.split(",")]


def test_refused_calls_are_refused_and_others_work() -> None:
    keyctl, io_uring_setup, bpf, getpid = 250, 425, 321, 39
    results = calls_in_a_filtered_child(keyctl, io_uring_setup, bpf, getpid)
    assert results == [errno.EPERM, errno.ENOSYS, errno.EPERM, 0]


def test_every_jump_stays_inside_the_program() -> None:
    program = seccomp.program()
    for index, (code, jt, jf, _) in enumerate(program):
        if code & 0x07 == 0x05:  # BPF_JMP
            assert index + 1 + max(jt, jf) < len(program)
    assert program[-1][0] == 0x06  # ends in a return
