"""The jail rules of ftpsup.server.fs without a server: client arguments, symlinks, errors.

What the integration escape tests (tests/integration/security/test_jail.py) check over a control
connection, checked here on JailedFs and proto.paths alone, under openat2 and under the
O_NOFOLLOW walk: ".." in a client argument stops at the home, no operation passes through a
symlink that points out of the home, and no error names the real path.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from ftpsup.proto import paths
from ftpsup.server.fs import JailedFs
from tests.server.fs.jails import errno_of, openat2_available

SECRET = b"outside: must never be read or changed\n"
INSIDE = b"inside the home\n"
MARKER = "MARKER"


@attrs.frozen
class Jail:
    fs: JailedFs
    home: Path
    outside: Path

    def snapshot(self) -> dict[str, tuple[int, int, int, bytes]]:
        """(mode, size, mtime_ns, content) of everything outside the home, to prove no change."""
        out: dict[str, tuple[int, int, int, bytes]] = {}
        for path in [self.outside, *self.outside.rglob("*")]:
            if path == self.home or self.home in path.parents:
                continue
            st = path.lstat()
            data = path.read_bytes() if path.is_file() else b""
            out[str(path.relative_to(self.outside))] = (
                st.st_mode,
                st.st_size,
                st.st_mtime_ns,
                data,
            )
        return out

    def inside_ids(self) -> set[str]:
        """The unique fact (device, inode) of the home and everything in it."""
        return {
            f"{s.st_dev:x}g{s.st_ino:x}"
            for p in [self.home, *self.home.rglob("*")]
            if (s := p.stat(follow_symlinks=False))
        }


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def jail(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Jail]:
    # tmp/outside holds the marker files and, two levels down, the home: "../.." from the
    # home would be tmp/outside itself.
    outside = tmp_path / "outside"
    home = outside / "srv" / "home"
    home.mkdir(parents=True)
    for path in (outside / MARKER, outside / "dir" / MARKER):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(SECRET)
        path.chmod(0o644)
    (home / MARKER).write_bytes(INSIDE)
    (home / "work").mkdir()
    if request.param and not openat2_available(home):
        pytest.skip("openat2 is not available here")
    fs = JailedFs(home, use_openat2=request.param)
    yield Jail(fs, home, outside)
    fs.close()


def raised(fn: Callable[[], object]) -> OSError:
    """The OSError `fn` raises; fails the test when it raises none."""
    try:
        fn()
    except OSError as exc:
        return exc
    pytest.fail("no OSError raised")


# -- ".." in what a client sends ------------------------------------------------------------

# Arguments a client sends from the directory /work; if ".." could climb above the home,
# they would name the outside markers.
ESCAPES = [
    "..",
    "../..",
    "../../..",
    "/../../..",
    "../../../../../../../..",
    f"../../../{MARKER}",
    f"/../../{MARKER}",
    f"..//..//..//{MARKER}",
    f"../../../dir/{MARKER}",
    f"../../../outside/{MARKER}",
    f"./../.././../{MARKER}",
]


@pytest.mark.parametrize("arg", ESCAPES)
def test_dotdot_in_a_client_argument_stops_at_the_home(jail: Jail, arg: str) -> None:
    before = jail.snapshot()
    vpath = paths.resolve("/work", arg)
    inside = jail.inside_ids()
    # Whatever the argument, the lookups either fail or land on something in the home.
    try:
        facts = jail.fs.stat(vpath)
    except OSError:
        pass
    else:
        assert facts.unique in inside
    try:
        names = [f.name for f in jail.fs.listdir(vpath)]
    except OSError:
        pass
    else:
        assert sorted(names) == sorted(os.listdir(jail.home / vpath.lstrip("/")))
    try:
        fd = jail.fs.open_read(vpath)
    except OSError:
        pass
    else:
        with os.fdopen(fd, "rb") as f:
            assert f.read() == INSIDE
    # The writes either fail or create inside the home.
    writes: list[Callable[[], object]] = [
        lambda: os.close(jail.fs.open_write(paths.join(vpath, "ESCAPED_STOR"))),
        lambda: jail.fs.mkdir(paths.join(vpath, "ESCAPED_MKD")),
        lambda: os.close(jail.fs.create_unique(vpath, "ESCAPED_STOU")[0]),
    ]
    for write in writes:
        with contextlib.suppress(OSError):
            write()
    assert jail.snapshot() == before


def test_dotdot_from_the_root_names_the_root(jail: Jail) -> None:
    for arg in ("..", "/..", "../..", "/../../.."):
        vpath = paths.resolve("/", arg)
        assert vpath == "/"
        assert jail.fs.stat(vpath).unique == jail.fs.stat("/").unique
        assert MARKER in [f.name for f in jail.fs.listdir(vpath)]


# -- symlinks pointing out ------------------------------------------------------------------

# Every operation, on a path that passes through the directory symlink /out.
THROUGH_OUT: dict[str, Callable[[JailedFs], object]] = {
    "stat": lambda fs: fs.stat(f"/out/{MARKER}"),
    "listdir": lambda fs: fs.listdir("/out"),
    "open_read": lambda fs: fs.open_read(f"/out/{MARKER}"),
    "open_write": lambda fs: fs.open_write(f"/out/{MARKER}"),
    "open_append": lambda fs: fs.open_write(f"/out/{MARKER}", append=True),
    "open_rest": lambda fs: fs.open_write(f"/out/{MARKER}", offset=1),
    "create_unique": lambda fs: fs.create_unique("/out", MARKER),
    "mkdir": lambda fs: fs.mkdir("/out/new"),
    "rmdir": lambda fs: fs.rmdir("/out/empty"),
    "unlink": lambda fs: fs.unlink(f"/out/{MARKER}"),
    "rename_from": lambda fs: fs.rename(f"/out/{MARKER}", "/stolen"),
    "rename_to": lambda fs: fs.rename(f"/{MARKER}", f"/out/{MARKER}"),
    "chmod": lambda fs: fs.chmod(f"/out/{MARKER}", 0o777),
    "set_mtime": lambda fs: fs.set_mtime(f"/out/{MARKER}", 1.0),
    "free_bytes": lambda fs: fs.free_bytes("/out"),
}


@pytest.mark.parametrize("op", sorted(THROUGH_OUT))
@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_no_operation_passes_through_a_symlink_pointing_out(jail: Jail, op: str, kind: str) -> None:
    (jail.outside / "dir" / "empty").mkdir()
    # Both name tmp/outside/dir; inside a chroot, both name a missing /…/dir of the home.
    (jail.home / "out").symlink_to(jail.outside / "dir" if kind == "absolute" else "../../dir")
    before = jail.snapshot()
    assert errno_of(lambda: THROUGH_OUT[op](jail.fs)) in (errno.ENOENT, errno.ELOOP)
    assert not jail.fs.is_dir("/out/empty")
    assert jail.snapshot() == before
    assert not (jail.home / "stolen").exists()
    assert (jail.home / MARKER).read_bytes() == INSIDE


# -- errors name virtual paths only ---------------------------------------------------------

FAILING: dict[str, tuple[Callable[[JailedFs], object], str, str | None]] = {
    "stat": (lambda fs: fs.stat("/no/such"), "/no/such", None),
    "listdir": (lambda fs: fs.listdir(f"/{MARKER}"), f"/{MARKER}", None),
    "open_read": (lambda fs: fs.open_read("/work"), "/work", None),
    "open_write": (lambda fs: fs.open_write("/no/such"), "/no/such", None),
    "open_rest": (lambda fs: fs.open_write(f"/{MARKER}", offset=999), f"/{MARKER}", None),
    "create_unique": (lambda fs: fs.create_unique("/no/such", "x"), "/no/such", None),
    "mkdir": (lambda fs: fs.mkdir("/work"), "/work", None),
    "rmdir": (lambda fs: fs.rmdir(f"/{MARKER}"), f"/{MARKER}", None),
    "unlink": (lambda fs: fs.unlink("/work"), "/work", None),
    "rename": (lambda fs: fs.rename("/no/such", "/work/x"), "/no/such", "/work/x"),
    "chmod": (lambda fs: fs.chmod("/no/such", 0o644), "/no/such", None),
    "set_mtime": (lambda fs: fs.set_mtime("/no/such", 1.0), "/no/such", None),
    "free_bytes": (lambda fs: fs.free_bytes("/no/such"), "/no/such", None),
}


@pytest.mark.parametrize("op", sorted(FAILING))
def test_errors_name_the_virtual_path_never_the_real_one(jail: Jail, op: str) -> None:
    call, vpath, vpath2 = FAILING[op]
    exc = raised(lambda: call(jail.fs))
    assert (exc.filename, exc.filename2) == (vpath, vpath2)
    assert str(jail.outside) not in str(exc)
