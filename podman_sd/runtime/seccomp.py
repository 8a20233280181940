"""A seccomp filter for apps: the kernel interfaces containers do not need.

Podman's (and docker's) default profile allows a long list of system calls
and refuses the rest; this one refuses a short list and allows the rest: the
calls that widen the kernel's attack surface from inside a container or reach
past it (the kernel keyring is not namespaced: a key an app adds lands in the
host root's keyring), none of which an ordinary service needs. io_uring says
ENOSYS, so libraries fall back to plain system calls; the others EPERM, as
in podman. A privileged app gets no filter, as with podman --privileged.

A classic BPF program for seccomp(2), built here (no libseccomp): x86-64 and
its i386 compatibility calls (int 0x80), whose numbers differ; x32 calls are
refused. On other machines no filter is installed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

# System call numbers: (x86-64, i386) for each refused call.
REFUSED = {
    "add_key": (248, 286),
    "request_key": (249, 287),
    "keyctl": (250, 288),
    "bpf": (321, 357),
    "perf_event_open": (298, 336),
    "userfaultfd": (323, 374),
    "kexec_load": (246, 283),
    "kexec_file_load": (320, None),
    "open_by_handle_at": (304, 342),
    "init_module": (175, 128),
    "finit_module": (313, 350),
    "delete_module": (176, 129),
    "iopl": (172, 110),
    "ioperm": (173, 101),
    "swapon": (167, 87),
    "swapoff": (168, 115),
    "reboot": (169, 88),
    "acct": (163, 51),
}
NOT_THERE = {  # refused as if the kernel had no such call: callers fall back
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
}

_AUDIT_ARCH_X86_64 = 0xC000003E
_AUDIT_ARCH_I386 = 0x40000003
_X32_BIT = 0x40000000
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_NR, _ARCH = 0, 4  # offsets in struct seccomp_data
_SYS_SECCOMP = 317  # x86-64
_SECCOMP_SET_MODE_FILTER = 1


def _stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k)


def _checks(index: int) -> list[tuple[int, int]]:
    """(number, errno) of the calls refused for one architecture (0: x86-64)."""
    found = [(nrs[index], errno.EPERM) for nrs in REFUSED.values()]
    found += [(nrs[index], errno.ENOSYS) for nrs in NOT_THERE.values()]
    return [(nr, err) for nr, err in found if nr is not None]


def program() -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions."""
    native, compat = _checks(0), _checks(1)
    out: list[tuple[int, int, int, int]] = [_stmt(_LD_W_ABS, _ARCH)]
    # arch == x86-64 ? native checks : (arch == i386 ? compat checks : allow)
    native_block = 4 + 2 * len(native)  # load nr, x32 check and return, checks, allow
    out.append((_JEQ_K, 0, native_block, _AUDIT_ARCH_X86_64))
    out.append(_stmt(_LD_W_ABS, _NR))
    out.append((_JGE_K, 0, 1, _X32_BIT))
    out.append(_stmt(_RET_K, _RET_ERRNO | errno.ENOSYS))
    for nr, err in native:
        out.append((_JEQ_K, 0, 1, nr))
        out.append(_stmt(_RET_K, _RET_ERRNO | err))
    out.append(_stmt(_RET_K, _RET_ALLOW))
    out.append((_JEQ_K, 0, 2 + 2 * len(compat), _AUDIT_ARCH_I386))
    out.append(_stmt(_LD_W_ABS, _NR))
    for nr, err in compat:
        out.append((_JEQ_K, 0, 1, nr))
        out.append(_stmt(_RET_K, _RET_ERRNO | err))
    out.append(_stmt(_RET_K, _RET_ALLOW))
    out.append(_stmt(_RET_K, _RET_ERRNO | errno.ENOSYS))  # no other ABI on x86-64
    return out


def supported() -> bool:
    return os.uname().machine == "x86_64"


def install() -> None:
    """Install the filter on this thread (and what it execs); needs
    no_new_privs or CAP_SYS_ADMIN. OSError if the kernel refuses it."""
    if not supported():
        return
    code = b"".join(struct.pack("=HBBI", *insn) for insn in program())
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("=HxxxxxxQ", len(code) // 8, ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog, len(fprog))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.syscall.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
    result = libc.syscall(_SYS_SECCOMP, _SECCOMP_SET_MODE_FILTER, 0, ctypes.addressof(fprog_buffer))
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")
