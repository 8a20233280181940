from __future__ import annotations

import os
from pathlib import Path

import pytest

from podman_sd.errors import RuntimeSetupError
from podman_sd.runtime.users import home_of, resolve_user


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"
    )
    (tmp_path / "etc/group").write_text("root:x:0:\napp:x:1001:\nextra:x:2000:app,other\n")
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", (0, 0, ())),
        ("0", (0, 0, ())),
        ("app", (1000, 1001, (2000,))),
        ("1000", (1000, 1001, (2000,))),
        ("app:0", (1000, 0, (2000,))),
        ("1000:app", (1000, 1001, (2000,))),
        ("4242", (4242, 0, ())),  # not in passwd: group 0, as runc
        ("4242:7", (4242, 7, ())),
    ],
)
def test_resolve(root: Path, spec: str, expected: tuple[int, int, tuple[int, ...]]) -> None:
    assert resolve_user(spec, root) == expected


def test_unknown_names_are_errors(root: Path) -> None:
    with pytest.raises(RuntimeSetupError, match="'ghost' is not in the image's /etc/passwd"):
        resolve_user("ghost", root)
    with pytest.raises(RuntimeSetupError, match="group 'nogroup'"):
        resolve_user("app:nogroup", root)


def test_home_comes_from_passwd_or_is_the_root(root: Path) -> None:
    assert home_of(1000, root) == "/home/app"
    assert home_of(0, root) == "/root"
    assert home_of(4242, root) == "/"  # no entry: runc's default


def test_a_passwd_that_is_no_regular_file_is_no_passwd(root: Path) -> None:
    """A hostile image: /etc/passwd a symlink to /dev/zero (endless) or a FIFO
    (blocks): neither is read, so the user is not found, at once."""
    (root / "etc/passwd").unlink()
    os.symlink("/dev/zero", root / "etc/passwd")
    with pytest.raises(RuntimeSetupError, match="'app' is not in the image's /etc/passwd"):
        resolve_user("app", root)
    (root / "etc/passwd").unlink()
    os.mkfifo(root / "etc/passwd")
    assert resolve_user("4242", root) == (4242, 0, ())
    assert home_of(4242, root) == "/"
