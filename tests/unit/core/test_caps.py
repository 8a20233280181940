from __future__ import annotations

from podman_sd.runtime import caps


def test_default_set_is_podmans() -> None:
    assert caps.effective_set((), (), False) == caps.DEFAULT_CAPABILITIES
    assert "NET_RAW" not in caps.DEFAULT_CAPABILITIES
    assert "SYS_ADMIN" not in caps.DEFAULT_CAPABILITIES


def test_add_and_drop_accept_both_spellings() -> None:
    result = caps.effective_set(("NET_ADMIN", "cap_net_raw"), ("CAP_CHOWN",), False)
    assert {"NET_ADMIN", "NET_RAW"} <= result
    assert "CHOWN" not in result


def test_drop_all_then_add() -> None:
    assert caps.effective_set(("NET_BIND_SERVICE",), ("ALL",), False) == {"NET_BIND_SERVICE"}


def test_privileged_gets_everything() -> None:
    assert caps.effective_set((), ("ALL",), True) == frozenset(caps.CAPABILITIES)


def test_mask_bits() -> None:
    assert caps.mask(frozenset({"CHOWN", "KILL"})) == (1 << 0) | (1 << 5)
