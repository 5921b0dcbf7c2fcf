"""Tests for ftpsup.server.fs: the jail holds under openat2 and under the O_NOFOLLOW walk, for
malformed virtual paths, symlinks pointing out, loops, renames and swaps.
"""

from __future__ import annotations

import errno
import functools
import shutil
import stat
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.fs.jails import (
    Jail,
    errno_of,
    read_all,
    write_all,
)

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
