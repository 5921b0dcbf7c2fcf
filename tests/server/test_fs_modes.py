"""JailedFs never lets a client's file carry setuid, setgid or sticky (server/fs Rule 8)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.server.fs import JailedFs

SPECIAL = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


@pytest.fixture(autouse=True)
def process_umask() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def fs(home: Path) -> Iterator[JailedFs]:
    with JailedFs(home, umask=0) as jailed:
        yield jailed


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mode", [0o4755, 0o2755, 0o1777, 0o7777, 0o6711], ids=oct)
def test_chmod_of_a_file_keeps_permission_bits_only(fs: JailedFs, home: Path, mode: int) -> None:
    (home / "idbin").write_bytes(b"\x7fELF")
    fs.chmod("/idbin", mode)
    assert mode_of(home / "idbin") == mode & 0o777


def test_chmod_of_a_directory_never_adds_setgid_or_sticky(fs: JailedFs, home: Path) -> None:
    (home / "d").mkdir(mode=0o755)
    fs.chmod("/d", 0o3775)
    assert mode_of(home / "d") == 0o775


def test_chmod_of_a_setgid_directory_keeps_its_setgid_bit(fs: JailedFs, home: Path) -> None:
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o2775)
    fs.chmod("/shared", 0o4750)
    assert mode_of(shared) == 0o2750


def test_file_open_mode_with_special_bits_creates_plain_files(home: Path) -> None:
    with JailedFs(home, umask=0, file_mode=0o7777) as fs:
        os.close(fs.open_write("/stor"))
        fd, _ = fs.create_unique("/", "stou")
        os.close(fd)
        fs.mkdir("/mkd")
    assert mode_of(home / "stor") == 0o777
    assert mode_of(home / "stou") == 0o777
    assert mode_of(home / "mkd") == 0o777


@pytest.mark.parametrize(("append", "offset"), [(False, 0), (True, 0), (False, 2)])
def test_writing_a_setuid_file_drops_its_special_bits(
    fs: JailedFs, home: Path, append: bool, offset: int
) -> None:
    # As root (CAP_FSETID) the kernel keeps setuid through a write: JailedFs must clear it.
    target = home / "su"
    target.write_bytes(b"old data")
    target.chmod(0o6755)
    os.close(fs.open_write("/su", append=append, offset=offset))
    assert mode_of(target) == 0o755


def test_mkdir_under_a_setgid_directory_inherits_setgid_only(fs: JailedFs, home: Path) -> None:
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o2777 | stat.S_ISVTX)
    fs.mkdir("/shared/sub")
    os.close(fs.open_write("/shared/file"))
    # The kernel's group-share rule for directories; a file gets no setgid, nothing sticky.
    assert mode_of(shared / "sub") == 0o2777
    assert mode_of(shared / "file") & SPECIAL == 0
