"""Tests for ftpsup.server.fs file data: creation modes, open_write and open_read (REST, APPE,
FIFOs, directories, fd flags), and create_unique.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ftpsup.server.fs import UNIQUE_TRIES, JailedFs
from tests.server.fs.jails import (
    Jail,
    errno_of,
    read_all,
    write_all,
)

# -- creation modes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("umask", "file_mode", "want_file", "want_dir"),
    [
        (0o022, 0o666, 0o644, 0o755),
        (0o027, 0o666, 0o640, 0o750),
        (0o002, 0o666, 0o664, 0o775),
        (0o000, 0o600, 0o600, 0o777),
    ],
)
def test_umask_applies_to_new_files_and_dirs_whatever_the_process_umask(
    tmp_path: Path, umask: int, file_mode: int, want_file: int, want_dir: int
) -> None:
    with JailedFs(tmp_path, umask=umask, file_mode=file_mode) as fs:
        os.close(fs.open_write("/stor"))
        os.close(fs.open_write("/appe", append=True))
        fd, _ = fs.create_unique("/", "stou")
        os.close(fd)
        fs.mkdir("/dir")
    for name in ("stor", "appe", "stou"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want_file, name
    assert stat.S_IMODE((tmp_path / "dir").stat().st_mode) == want_dir


def test_overwriting_a_file_keeps_its_mode(jail: Jail) -> None:
    (jail.home / "f").write_text("old")
    (jail.home / "f").chmod(0o600)
    write_all(jail.fs.open_write("/f"), b"new")
    assert stat.S_IMODE((jail.home / "f").stat().st_mode) == 0o600
    assert (jail.home / "f").read_bytes() == b"new"


# -- open_write / open_read ----------------------------------------------------------------


def test_stor_creates_then_truncates(jail: Jail) -> None:
    write_all(jail.fs.open_write("/f"), b"a long first version")
    write_all(jail.fs.open_write("/f"), b"short")
    assert (jail.home / "f").read_bytes() == b"short"
    assert read_all(jail.fs.open_read("/f")) == b"short"


@pytest.mark.parametrize("offset", [0, 3, 6])
def test_rest_stor_keeps_prefix_and_drops_the_tail(jail: Jail, offset: int) -> None:
    (jail.home / "f").write_bytes(b"abcdef")
    write_all(jail.fs.open_write("/f", offset=offset), b"XY")
    assert (jail.home / "f").read_bytes() == b"abcdef"[:offset] + b"XY"


def test_rest_stor_beyond_end_fails_einval_and_leaves_file(jail: Jail) -> None:
    (jail.home / "f").write_bytes(b"abc")
    assert errno_of(lambda: jail.fs.open_write("/f", offset=4)) == errno.EINVAL
    assert (jail.home / "f").read_bytes() == b"abc"


def test_rest_stor_on_missing_file_creates_nothing(jail: Jail) -> None:
    assert errno_of(lambda: jail.fs.open_write("/new", offset=1)) == errno.ENOENT
    assert not (jail.home / "new").exists()


def test_appe_appends_and_creates_when_missing(jail: Jail) -> None:
    (jail.home / "f").write_bytes(b"abc")
    write_all(jail.fs.open_write("/f", append=True), b"def")
    write_all(jail.fs.open_write("/g", append=True), b"new")
    assert (jail.home / "f").read_bytes() == b"abcdef"
    assert (jail.home / "g").read_bytes() == b"new"


@pytest.mark.parametrize(("offset", "append"), [(-1, False), (2, True)])
def test_open_write_rejects_bad_offset_arguments(jail: Jail, offset: int, append: bool) -> None:
    with pytest.raises(ValueError, match="offset"):
        jail.fs.open_write("/f", offset=offset, append=append)


def test_directories_are_refused_for_data(jail: Jail) -> None:
    (jail.home / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        jail.fs.open_read("/d")
    with pytest.raises(IsADirectoryError):
        jail.fs.open_write("/d")
    with pytest.raises(IsADirectoryError):
        jail.fs.open_read("/")


def run_bounded(fn: Callable[[], object], seconds: float = 5.0) -> BaseException | None:
    """Run fn in a daemon thread; fail the test if it is still blocked after `seconds`."""
    result: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            result.append(exc)
        else:
            result.append(None)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "call blocked"
    return result[0]


@pytest.mark.parametrize("op", ["write", "append", "rest", "read"])
def test_fifo_is_refused_without_hanging(jail: Jail, op: str) -> None:
    os.mkfifo(jail.home / "fifo")
    calls: dict[str, Callable[[], object]] = {
        "write": lambda: jail.fs.open_write("/fifo"),
        "append": lambda: jail.fs.open_write("/fifo", append=True),
        "rest": lambda: jail.fs.open_write("/fifo", offset=1),
        "read": lambda: jail.fs.open_read("/fifo"),
    }
    exc = run_bounded(calls[op])
    assert isinstance(exc, OSError)
    assert exc.errno == errno.EPERM


def test_fifo_with_a_reader_is_still_refused_for_stor(jail: Jail) -> None:
    os.mkfifo(jail.home / "fifo")
    reader = os.open(jail.home / "fifo", os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert errno_of(lambda: jail.fs.open_write("/fifo")) == errno.EPERM
    finally:
        os.close(reader)


def test_returned_fds_are_blocking_and_close_on_exec(jail: Jail) -> None:
    (jail.home / "f").write_text("x")
    for fd in (jail.fs.open_read("/f"), jail.fs.open_write("/f", append=True)):
        try:
            assert os.get_blocking(fd)
            assert not os.get_inheritable(fd)
        finally:
            os.close(fd)


# -- create_unique -------------------------------------------------------------------------


def test_create_unique_numbers_names_after_the_stem(jail: Jail) -> None:
    jail.fs.mkdir("/up")
    made = []
    for _ in range(3):
        fd, vpath = jail.fs.create_unique("/up", "file.txt")
        os.close(fd)
        made.append(vpath)
    assert made == ["/up/file.txt", "/up/file.txt.1", "/up/file.txt.2"]
    assert sorted(p.name for p in (jail.home / "up").iterdir()) == [
        "file.txt",
        "file.txt.1",
        "file.txt.2",
    ]


def test_create_unique_gives_up_after_bounded_tries(jail: Jail) -> None:
    for i in range(UNIQUE_TRIES):
        (jail.home / (f"s.{i}" if i else "s")).touch()
    assert errno_of(lambda: jail.fs.create_unique("/", "s")) == errno.EEXIST


def test_create_unique_never_writes_through_a_symlink_named_like_the_stem(jail: Jail) -> None:
    (jail.home / "s").symlink_to(jail.outside / "planted")
    fd, vpath = jail.fs.create_unique("/", "s")
    os.close(fd)
    assert vpath == "/s.1"
    assert not (jail.outside / "planted").exists()
