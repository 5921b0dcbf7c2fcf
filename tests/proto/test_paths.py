from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.paths import PathError, components, is_within, join, resolve, split


@pytest.mark.parametrize(
    ("cwd", "arg", "expected"),
    [
        ("/", "", "/"),
        ("/a/b", "", "/a/b"),
        ("/a", "b", "/a/b"),
        ("/a", "/x/y", "/x/y"),
        ("/a/b", "..", "/a"),
        ("/a/b", "../..", "/"),
        ("/a/b", "../../../..", "/"),
        ("/", "/../..", "/"),
        ("/", "..", "/"),
        ("/a", "./b/./c", "/a/b/c"),
        ("/", "//x", "/x"),
        ("/", "x//y///z", "/x/y/z"),
        ("/", "x/", "/x"),
        ("/", "/", "/"),
        ("/home", "~", "/home/~"),
        ("/", "~/x", "/~/x"),
        ("/", "*.txt", "/*.txt"),
        ("/", "a/../../b", "/b"),
        ("/", "...", "/..."),
        ("/", "a b", "/a b"),
    ],
)
def test_resolve_joins_normalises_and_clamps_at_root(cwd: str, arg: str, expected: str) -> None:
    assert resolve(cwd, arg) == expected


@pytest.mark.parametrize("arg", ["a\0b", "a\rb", "a\nb", "\n", "/x\r\n"])
def test_resolve_refuses_nul_cr_lf_with_553(arg: str) -> None:
    with pytest.raises(PathError) as info:
        resolve("/", arg)
    assert info.value.reply_code == 553


def test_resolve_accepts_a_255_byte_component() -> None:
    assert resolve("/", "é" * 127 + "x") == "/" + "é" * 127 + "x"


def test_resolve_refuses_a_component_over_255_bytes_in_utf8() -> None:
    with pytest.raises(PathError) as info:
        resolve("/", "é" * 128)
    assert info.value.reply_code == 553


def test_resolve_counts_escaped_non_utf8_bytes_as_one_byte_each() -> None:
    name = (b"\xe9" * 255).decode("utf-8", "surrogateescape")
    assert resolve("/", name) == "/" + name


def test_resolve_refuses_a_surrogate_that_stands_for_no_byte() -> None:
    with pytest.raises(PathError):
        resolve("/", "a\ud800")


@pytest.mark.parametrize(
    ("vpath", "expected"), [("/a/b", ("/a", "b")), ("/a", ("/", "a")), ("/", ("/", ""))]
)
def test_split_gives_directory_and_last_name(vpath: str, expected: tuple[str, str]) -> None:
    assert split(vpath) == expected


@pytest.mark.parametrize(
    ("directory", "name", "expected"),
    [("/", "a", "/a"), ("/a", "b", "/a/b"), ("/a", "", "/a"), ("/", "", "/")],
)
def test_join_appends_one_name(directory: str, name: str, expected: str) -> None:
    assert join(directory, name) == expected


@pytest.mark.parametrize("name", [".", "..", "a/b", "a\0", "a\n", "x" * 256])
def test_join_refuses_anything_but_one_plain_name(name: str) -> None:
    with pytest.raises(PathError):
        join("/a", name)


def test_components_lists_the_names_below_root() -> None:
    assert components("/") == []
    assert components("/a/b") == ["a", "b"]


@pytest.mark.parametrize(
    ("vpath", "directory", "expected"),
    [
        ("/a/b", "/a", True),
        ("/a", "/a", True),
        ("/ab", "/a", False),
        ("/", "/a", False),
        ("/a", "/", True),
        ("/", "/", True),
        ("/b/a", "/a", False),
    ],
)
def test_is_within_compares_whole_components(vpath: str, directory: str, expected: bool) -> None:
    assert is_within(vpath, directory) is expected


names = st.one_of(
    st.sampled_from(["", ".", "..", "~", "a", "b c"]),
    st.text(
        alphabet=st.characters(codec="utf-8", blacklist_characters="/\0\r\n"),
        max_size=8,
    ),
    # Bytes that are not UTF-8, as the command decoder hands them over.
    st.lists(st.integers(0x80, 0xFF), min_size=1, max_size=4).map(
        lambda high: bytes(high).decode("utf-8", "surrogateescape")
    ),
)
args = st.lists(names, max_size=8).map("/".join)
prefixes = st.sampled_from(["", "/", "//", "./"])
cwds = st.lists(st.sampled_from(["a", "b", "~", "x y"]), max_size=4).map(
    lambda parts: "/" + "/".join(parts)
)


def is_normalised(vpath: str) -> bool:
    if vpath == "/":
        return True
    return (
        vpath.startswith("/")
        and not vpath.endswith("/")
        and all(name not in ("", ".", "..") for name in vpath[1:].split("/"))
    )


@given(cwd=cwds, prefix=prefixes, arg=args)
def test_resolve_always_gives_a_normalised_absolute_path(cwd: str, prefix: str, arg: str) -> None:
    result = resolve(cwd, prefix + arg)
    assert is_normalised(result)
    assert ".." not in components(result)


@given(cwd=cwds, arg=args)
def test_resolve_is_idempotent(cwd: str, arg: str) -> None:
    once = resolve(cwd, arg)
    assert resolve(cwd, once) == once
    assert resolve("/anywhere", once) == once


@given(cwd=cwds, n=st.integers(0, 12), rest=args)
def test_dot_dot_never_climbs_above_root(cwd: str, n: int, rest: str) -> None:
    rest = rest.lstrip("/")
    result = resolve(cwd, "../" * n + rest)
    depth = len(components(cwd))
    if n >= depth:
        assert result == resolve("/", rest)
    else:
        assert result == resolve("/" + "/".join(components(cwd)[: depth - n]), rest)


@given(cwd=cwds, arg=args)
def test_split_then_join_gives_the_path_back(cwd: str, arg: str) -> None:
    vpath = resolve(cwd, arg)
    head, name = split(vpath)
    assert join(head, name) == vpath
    if vpath != "/":
        assert components(vpath) == [*components(head), name]
