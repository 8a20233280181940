"""Linux capabilities by name, and the default set apps get.

The default is podman's (containers.conf ``default_capabilities``), which is
smaller than Docker's and Kubernetes': no MKNOD, NET_RAW or AUDIT_WRITE.
"""

from __future__ import annotations

from podman_sd import syscalls as sc

# <linux/capability.h>
CAPABILITIES = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
    "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13,
    "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17,
    "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21,
    "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33,
    "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36, "AUDIT_READ": 37,
    "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}  # fmt: skip

DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
        "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip


def normalize(name: str) -> str:
    """Kubernetes writes NET_ADMIN, podman CAP_NET_ADMIN: accept both."""
    upper = name.upper()
    return upper.removeprefix("CAP_")


def effective_set(add: tuple[str, ...], drop: tuple[str, ...], privileged: bool) -> frozenset[str]:
    if privileged:
        return frozenset(CAPABILITIES)
    dropped = {normalize(n) for n in drop}
    if "ALL" in dropped:
        base: set[str] = set()
    else:
        base = set(DEFAULT_CAPABILITIES) - dropped
    added = {normalize(n) for n in add}
    if "ALL" in added:
        return frozenset(CAPABILITIES)
    return frozenset(base | added)


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())


def mask(names: frozenset[str]) -> int:
    return sum(1 << CAPABILITIES[n] for n in names if n in CAPABILITIES)


def limit_bounding_set(keep: frozenset[str]) -> None:
    """Drop every capability not in KEEP from the bounding set (needs SETPCAP)."""
    keep_numbers = {CAPABILITIES[n] for n in keep if n in CAPABILITIES}
    for number in range(last_cap() + 1):
        if number not in keep_numbers:
            sc.prctl(sc.PR_CAPBSET_DROP, number)


def apply_process_caps(keep: frozenset[str]) -> None:
    """Set effective, permitted and inheritable to KEEP (as far as this process
    has them); clear ambient."""
    # Nothing can be granted beyond what this process has: a machine may
    # withhold some capabilities (CAP_SYS_RESOURCE in these containers).
    bits = mask(keep) & sc.capget()[1]
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    sc.capset(bits, bits, bits)
