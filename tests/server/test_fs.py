"""Tests for ftpsup.server.fs: the jail holds under openat2 and under the O_NOFOLLOW walk."""

from __future__ import annotations

import errno
import functools
import os
import pwd
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftpsup.proto.facts import FileKind
from ftpsup.server.fs import UNIQUE_TRIES, JailedFs


@attrs.frozen
class Jail:
    fs: JailedFs
    home: Path
    outside: Path

    @property
    def chroot(self) -> bool:
        """True when symlinks resolve inside the home (openat2) instead of being refused."""
        return self.fs.uses_openat2


def _openat2_available(path: Path) -> bool:
    try:
        JailedFs(path, use_openat2=True).close()
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def process_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def jail(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Jail]:
    home = tmp_path / "home"
    outside = tmp_path / "outside"
    home.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("outside")
    if request.param and not _openat2_available(home):
        pytest.skip("openat2 is not available here")
    fs = JailedFs(home, use_openat2=request.param)
    yield Jail(fs, home, outside)
    fs.close()


def read_all(fd: int) -> bytes:
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def errno_of(fn: Callable[[], object]) -> int:
    """The errno of the OSError `fn` raises; fails the test when it raises none."""
    try:
        fn()
    except OSError as exc:
        return exc.errno if exc.errno is not None else -1
    pytest.fail("no OSError raised")


# -- virtual paths -------------------------------------------------------------------------

BAD_VPATHS = ["", "a", "a/b", "/a/", "//x", "/..", "/../..", "/a/../b", "/./a", "/a/.", "/a\0b"]
BAD_VPATHS += ["/a\nb", "/a\rb"]


@pytest.mark.parametrize("vpath", BAD_VPATHS)
def test_malformed_virtual_path_raises_value_error_everywhere(jail: Jail, vpath: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: jail.fs.stat(vpath),
        lambda: jail.fs.listdir(vpath),
        lambda: jail.fs.open_read(vpath),
        lambda: jail.fs.open_write(vpath),
        lambda: jail.fs.mkdir(vpath),
        lambda: jail.fs.unlink(vpath),
        lambda: jail.fs.rename("/x", vpath),
        lambda: jail.fs.chmod(vpath, 0o777),
        lambda: jail.fs.is_dir(vpath),
        lambda: jail.fs.real_path(vpath),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="path"):
            call()
    assert sorted(p.name for p in jail.home.parent.iterdir()) == ["home", "outside"]


@pytest.mark.parametrize("stem", ["", ".", "..", "a/b", "a\nb"])
def test_create_unique_refuses_a_stem_that_is_not_one_name(jail: Jail, stem: str) -> None:
    with pytest.raises(ValueError, match="component"):
        jail.fs.create_unique("/", stem)


def test_errors_name_the_virtual_path_never_the_home(jail: Jail) -> None:
    with pytest.raises(FileNotFoundError) as info:
        jail.fs.open_read("/missing/file")
    assert info.value.filename == "/missing/file"
    assert str(jail.home) not in str(info.value)


# -- the jail regression set ---------------------------------------------------------------


def test_absolute_symlink_resolves_inside_home_like_a_chroot(jail: Jail) -> None:
    (jail.home / "out").symlink_to(jail.outside)
    mirror = jail.home / str(jail.outside).lstrip("/")
    mirror.mkdir(parents=True)
    (mirror / "secret").write_text("jailed")
    if jail.chroot:
        assert read_all(jail.fs.open_read("/out/secret")) == b"jailed"
    else:
        assert errno_of(lambda: jail.fs.open_read("/out/secret")) == errno.ELOOP


def test_absolute_symlink_pointing_out_never_reaches_outside(jail: Jail) -> None:
    (jail.home / "out").symlink_to(jail.outside)
    assert errno_of(lambda: jail.fs.open_read("/out/secret")) in (errno.ENOENT, errno.ELOOP)
    assert errno_of(lambda: jail.fs.listdir("/out")) in (errno.ENOENT, errno.ELOOP)
    assert errno_of(lambda: jail.fs.open_write("/out/new")) in (errno.ENOENT, errno.ELOOP)
    assert errno_of(lambda: jail.fs.mkdir("/out/dir")) in (errno.ENOENT, errno.ELOOP)
    assert sorted(p.name for p in jail.outside.iterdir()) == ["secret"]


@pytest.mark.parametrize("append", [False, True])
def test_stor_onto_a_final_symlink_pointing_out_leaves_outside_file(
    jail: Jail, append: bool
) -> None:
    (jail.home / "link").symlink_to(jail.outside / "secret")
    code = errno_of(lambda: jail.fs.open_write("/link", append=append))
    assert code in (errno.ENOENT, errno.ELOOP)
    assert (jail.outside / "secret").read_text() == "outside"
    assert (jail.home / "link").is_symlink()


def test_relative_symlink_climbing_out_stops_at_home(jail: Jail) -> None:
    (jail.home / "up").symlink_to("../../../../../../..")
    if jail.chroot:
        assert jail.fs.stat("/up").unique == jail.fs.stat("/").unique
        assert errno_of(lambda: jail.fs.open_read("/up/outside/secret")) == errno.ENOENT
    else:
        assert errno_of(lambda: jail.fs.stat("/up")) == errno.ELOOP
        assert errno_of(lambda: jail.fs.open_read("/up/outside/secret")) == errno.ELOOP


def test_relative_symlink_one_level_up_does_not_reach_sibling(jail: Jail) -> None:
    (jail.home / "sib").symlink_to("../outside/secret")
    assert errno_of(lambda: jail.fs.open_read("/sib")) in (errno.ENOENT, errno.ELOOP)


@pytest.mark.parametrize("links", [{"a": "b", "b": "a"}, {"self": "self"}, {"a": "/b", "b": "/a"}])
def test_symlink_loop_fails_with_eloop(jail: Jail, links: dict[str, str]) -> None:
    for name, target in links.items():
        (jail.home / name).symlink_to(target)
    for name in links:
        assert errno_of(functools.partial(jail.fs.stat, f"/{name}")) == errno.ELOOP
        assert errno_of(functools.partial(jail.fs.open_read, f"/{name}")) == errno.ELOOP


def test_rnto_into_a_symlink_pointing_out_does_not_escape(jail: Jail) -> None:
    (jail.home / "f").write_text("mine")
    (jail.home / "out").symlink_to(jail.outside)
    assert errno_of(lambda: jail.fs.rename("/f", "/out/f")) in (errno.ENOENT, errno.ELOOP)
    assert (jail.home / "f").read_text() == "mine"
    assert not (jail.outside / "f").exists()


def test_rnto_through_a_climbing_symlink_lands_inside_or_fails(jail: Jail) -> None:
    (jail.home / "f").write_text("mine")
    (jail.home / "up").symlink_to("..")
    if jail.chroot:
        jail.fs.rename("/f", "/up/moved")
        assert (jail.home / "moved").read_text() == "mine"
    else:
        assert errno_of(lambda: jail.fs.rename("/f", "/up/moved")) == errno.ELOOP
    assert not (jail.home.parent / "moved").exists()


def test_rnfr_of_a_symlink_moves_the_link_not_its_target(jail: Jail) -> None:
    (jail.home / "out").symlink_to(jail.outside / "secret")
    jail.fs.rename("/out", "/renamed")
    assert (jail.home / "renamed").is_symlink()
    assert (jail.outside / "secret").read_text() == "outside"


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_directory_swapped_for_symlink_between_operations_stays_jailed(
    jail: Jail, kind: str
) -> None:
    jail.fs.mkdir("/d")
    write_all(jail.fs.open_write("/d/secret"), b"inside")
    assert read_all(jail.fs.open_read("/d/secret")) == b"inside"
    shutil.rmtree(jail.home / "d")
    (jail.home / "d").symlink_to(jail.outside if kind == "absolute" else "../outside")

    assert errno_of(lambda: jail.fs.open_read("/d/secret")) in (errno.ENOENT, errno.ELOOP)
    assert errno_of(lambda: jail.fs.open_write("/d/secret")) in (errno.ENOENT, errno.ELOOP)
    assert errno_of(lambda: jail.fs.unlink("/d/secret")) in (errno.ENOENT, errno.ELOOP)
    assert errno_of(lambda: jail.fs.chmod("/d/secret", 0o777)) in (errno.ENOENT, errno.ELOOP)
    assert (jail.outside / "secret").read_text() == "outside"
    assert stat.S_IMODE((jail.outside / "secret").stat().st_mode) == 0o644


@pytest.mark.parametrize("target", ["absolute", "relative"])
def test_chmod_on_symlink_pointing_out_leaves_outside_file_alone(jail: Jail, target: str) -> None:
    secret = jail.outside / "secret"
    secret.chmod(0o600)
    (jail.home / "link").symlink_to(secret if target == "absolute" else "../outside/secret")
    assert errno_of(lambda: jail.fs.chmod("/link", 0o777)) in (errno.ENOENT, errno.ELOOP)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_set_mtime_on_symlink_pointing_out_leaves_outside_file_alone(jail: Jail) -> None:
    secret = jail.outside / "secret"
    before = secret.stat().st_mtime_ns
    (jail.home / "link").symlink_to(secret)
    assert errno_of(lambda: jail.fs.set_mtime("/link", 1.0)) in (errno.ENOENT, errno.ELOOP)
    assert secret.stat().st_mtime_ns == before


def test_chmod_follows_a_symlink_that_stays_inside_with_openat2(jail: Jail) -> None:
    (jail.home / "f").write_text("x")
    (jail.home / "link").symlink_to("/f")
    if jail.chroot:
        jail.fs.chmod("/link", 0o600)
        assert stat.S_IMODE((jail.home / "f").stat().st_mode) == 0o600
    else:
        assert errno_of(lambda: jail.fs.chmod("/link", 0o600)) == errno.ELOOP
    assert (jail.home / "link").is_symlink()


_COMPONENTS = st.sampled_from(["..", ".", "", "d", "f", "out", "up", "loop", "abs"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(_COMPONENTS, max_size=6))
def test_no_path_string_reaches_anything_outside_home(jail: Jail, parts: list[str]) -> None:
    if not (jail.home / "d").exists():
        (jail.home / "d").mkdir()
        (jail.home / "f").write_text("in")
        (jail.home / "out").symlink_to(jail.outside)
        (jail.home / "up").symlink_to("../../..")
        (jail.home / "loop").symlink_to("loop")
        (jail.home / "abs").symlink_to("/d/../..")
    inside = {
        f"{s.st_dev:x}g{s.st_ino:x}"
        for p in [jail.home, *jail.home.rglob("*")]
        if (s := p.stat(follow_symlinks=False))
    }
    vpath = "/" + "/".join(parts)
    try:
        facts = jail.fs.stat(vpath)
    except (ValueError, OSError):
        return
    assert facts.unique in inside


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
    if not _openat2_available(tmp_path):
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
