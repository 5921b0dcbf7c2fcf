"""Tests for ftpsup.server.fs namespace operations, attributes and lifecycle: unlink, mkdir,
rename, chmod, mtimes, stat and listings, ids, closing, and sharing across threads.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ftpsup.proto.facts import FileKind
from ftpsup.server.fs import JailedFs
from tests.server.fs.jails import (
    Jail,
    errno_of,
    openat2_available,
    read_all,
    write_all,
)

# -- namespace operations ------------------------------------------------------------------


def test_unlink_of_a_symlink_removes_the_link_and_keeps_targets(jail: Jail) -> None:
    (jail.home / "f").write_text("in")
    (jail.home / "to_in").symlink_to("f")
    (jail.home / "to_out").symlink_to(jail.outside / "secret")
    jail.fs.unlink("/to_in")
    jail.fs.unlink("/to_out")
    assert not (jail.home / "to_in").is_symlink()
    assert not (jail.home / "to_out").is_symlink()
    assert (jail.home / "f").read_text() == "in"
    assert (jail.outside / "secret").read_text() == "outside"


def test_unlink_refuses_directories_and_the_root(jail: Jail) -> None:
    (jail.home / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        jail.fs.unlink("/d")
    with pytest.raises(IsADirectoryError):
        jail.fs.unlink("/")
    assert (jail.home / "d").is_dir()


def test_mkdir_rmdir_errors(jail: Jail) -> None:
    jail.fs.mkdir("/d")
    (jail.home / "d" / "f").touch()
    assert errno_of(lambda: jail.fs.mkdir("/d")) == errno.EEXIST
    assert errno_of(lambda: jail.fs.mkdir("/")) == errno.EEXIST
    assert errno_of(lambda: jail.fs.mkdir("/no/d")) == errno.ENOENT
    assert errno_of(lambda: jail.fs.rmdir("/d")) == errno.ENOTEMPTY
    assert errno_of(lambda: jail.fs.rmdir("/d/f")) == errno.ENOTDIR
    assert errno_of(lambda: jail.fs.rmdir("/")) == errno.EBUSY
    (jail.home / "d" / "f").unlink()
    jail.fs.rmdir("/d")
    assert not (jail.home / "d").exists()


def test_rename_moves_files_and_dirs_and_refuses_the_root(jail: Jail) -> None:
    (jail.home / "a").write_text("a")
    (jail.home / "b").write_text("b")
    (jail.home / "d").mkdir()
    jail.fs.rename("/a", "/b")
    jail.fs.rename("/d", "/e")
    jail.fs.rename("/b", "/e/c")
    assert (jail.home / "e" / "c").read_text() == "a"
    assert errno_of(lambda: jail.fs.rename("/", "/x")) == errno.EBUSY
    assert errno_of(lambda: jail.fs.rename("/e", "/")) == errno.EBUSY
    assert errno_of(lambda: jail.fs.rename("/e", "/e/inner")) == errno.EINVAL
    assert errno_of(lambda: jail.fs.rename("/missing", "/x")) == errno.ENOENT


def test_final_component_symlink_to_dir_is_not_entered_by_rmdir(jail: Jail) -> None:
    (jail.home / "d").mkdir()
    (jail.home / "link").symlink_to("d")
    assert errno_of(lambda: jail.fs.rmdir("/link")) == errno.ENOTDIR
    assert (jail.home / "d").is_dir()


# -- attributes and facts ------------------------------------------------------------------


def test_chmod_masks_to_permission_bits(jail: Jail) -> None:
    (jail.home / "f").touch()
    jail.fs.chmod("/f", 0o100640)
    assert stat.S_IMODE((jail.home / "f").stat().st_mode) == 0o640
    assert jail.fs.stat("/f").mode == 0o640


def test_set_mtime_sets_modification_time_and_keeps_access_time(jail: Jail) -> None:
    f = jail.home / "f"
    f.touch()
    os.utime(f, (1_000_000.0, 2_000_000.0))
    jail.fs.set_mtime("/f", 1_700_000_000.25)
    st_f = f.stat()
    assert st_f.st_mtime == pytest.approx(1_700_000_000.25)
    assert st_f.st_atime == pytest.approx(1_000_000.0)
    assert jail.fs.stat("/f").mtime == pytest.approx(1_700_000_000.25)


def test_stat_names_and_unique(jail: Jail) -> None:
    (jail.home / "d").mkdir()
    (jail.home / "d" / "f").write_bytes(b"12345")
    root = jail.fs.stat("/")
    facts = jail.fs.stat("/d/f")
    real = (jail.home / "d" / "f").stat()
    assert (root.name, root.kind) == ("/", FileKind.DIR)
    assert (facts.name, facts.kind, facts.size) == ("f", FileKind.FILE, 5)
    assert facts.unique == f"{real.st_dev:x}g{real.st_ino:x}"
    assert facts.owner == pwd.getpwuid(real.st_uid).pw_name


def test_listdir_reports_sorted_facts(jail: Jail) -> None:
    (jail.home / "b.txt").write_bytes(b"hello")
    (jail.home / "a").mkdir()
    os.utime(jail.home / "b.txt", (5.0, 1_600_000_000.0))
    listing = jail.fs.listdir("/")
    assert [f.name for f in listing] == ["a", "b.txt"]
    a, b = listing
    assert (a.kind, a.mode, a.nlink) == (FileKind.DIR, 0o755, 2)
    assert (b.kind, b.size, b.mtime, b.mode) == (FileKind.FILE, 5, 1_600_000_000.0, 0o644)
    assert b.link_target is None
    assert b.unique == jail.fs.stat("/b.txt").unique


def test_listdir_reports_symlinks_with_target_facts_or_size_zero(jail: Jail) -> None:
    (jail.home / "f").write_bytes(b"12345")
    (jail.home / "good").symlink_to("f")
    (jail.home / "dangling").symlink_to("nowhere")
    (jail.home / "out").symlink_to(jail.outside / "secret")
    by_name = {f.name: f for f in jail.fs.listdir("/")}
    good, dangling, out = by_name["good"], by_name["dangling"], by_name["out"]
    assert {good.kind, dangling.kind, out.kind} == {FileKind.LINK}
    assert (good.link_target, dangling.link_target) == ("f", "nowhere")
    assert out.link_target == str(jail.outside / "secret")
    assert (dangling.size, out.size) == (0, 0)
    assert (dangling.target_kind, out.target_kind) == (None, None)
    if jail.chroot:
        assert (good.size, good.target_kind) == (5, FileKind.FILE)
        assert good.unique == by_name["f"].unique
    else:
        assert (good.size, good.target_kind) == (0, None)


def test_listdir_of_a_file_is_enotdir(jail: Jail) -> None:
    (jail.home / "f").touch()
    assert errno_of(lambda: jail.fs.listdir("/f")) == errno.ENOTDIR


def test_hide_ids_reports_ftp_for_owner_and_group(tmp_path: Path) -> None:
    (tmp_path / "f").touch()
    with JailedFs(tmp_path, hide_ids=True) as fs:
        facts = fs.stat("/f")
    assert (facts.owner, facts.group) == ("ftp", "ftp")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs chown")
def test_unknown_ids_are_reported_as_numbers(tmp_path: Path) -> None:
    (tmp_path / "f").touch()
    os.chown(tmp_path / "f", 54321, 54322)
    with JailedFs(tmp_path) as fs:
        facts = fs.listdir("/")[0]
    assert (facts.owner, facts.group) == ("54321", "54322")


def test_names_with_spaces_utf8_and_raw_bytes_round_trip(jail: Jail) -> None:
    raw = os.fsdecode(b"caf\xe9 menu")
    names = ["with space", "été 日本語", raw]
    for i, name in enumerate(names):
        write_all(jail.fs.open_write(f"/{name}"), str(i).encode())
    assert os.path.exists(os.fsencode(jail.home) + b"/caf\xe9 menu")
    assert [f.name for f in jail.fs.listdir("/")] == sorted(names)
    for i, name in enumerate(names):
        assert read_all(jail.fs.open_read(f"/{name}")) == str(i).encode()
    jail.fs.mkdir("/dir é")
    jail.fs.rename(f"/{raw}", f"/dir é/{raw}")
    assert [f.name for f in jail.fs.listdir("/dir é")] == [raw]


def test_is_dir(jail: Jail) -> None:
    (jail.home / "d").mkdir()
    (jail.home / "f").touch()
    (jail.home / "dangling").symlink_to("nowhere")
    (jail.home / "to_d").symlink_to("d")
    assert jail.fs.is_dir("/")
    assert jail.fs.is_dir("/d")
    assert jail.fs.is_dir("/to_d") is jail.chroot
    assert not jail.fs.is_dir("/f")
    assert not jail.fs.is_dir("/missing")
    assert not jail.fs.is_dir("/dangling")


def test_free_bytes_matches_statvfs(jail: Jail) -> None:
    real = os.statvfs(jail.home)
    free = jail.fs.free_bytes("/")
    assert free > 0
    assert abs(free - real.f_bavail * real.f_frsize) <= real.f_blocks * real.f_frsize // 100


def test_real_path_is_home_plus_vpath(jail: Jail) -> None:
    assert jail.fs.root == str(jail.home)
    assert jail.fs.real_path("/") == str(jail.home)
    assert jail.fs.real_path("/a/b") == f"{jail.home}/a/b"


# -- lifecycle and sharing -----------------------------------------------------------------


def test_detection_picks_openat2_on_this_kernel(tmp_path: Path) -> None:
    if not openat2_available(tmp_path):
        pytest.skip("openat2 is not available here")
    with JailedFs(tmp_path) as fs:
        assert fs.uses_openat2


def test_calls_after_close_fail_with_ebadf(tmp_path: Path) -> None:
    fs = JailedFs(tmp_path)
    fs.close()
    fs.close()
    assert errno_of(lambda: fs.stat("/")) == errno.EBADF


def test_a_missing_home_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        JailedFs(tmp_path / "missing")


def test_one_object_serves_many_threads(jail: Jail) -> None:
    for i in range(20):
        (jail.home / f"f{i}").write_text(str(i))

    def work(i: int) -> bytes:
        return read_all(jail.fs.open_read(f"/f{i}"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(work, range(20)))
    assert got == [str(i).encode() for i in range(20)]
