"""The home jail of a real ftpsup instance: CWD, listings, file verbs, STOR, RNFR/RNTO and MKD
with arguments that try to leave the home, symlinks planted inside it, and NUL, CR and LF in a
path.

Marker files are planted OUTSIDE alice's home, in the server's base directory; every escape
test proves they are never listed, read, overwritten, renamed or deleted, and that nothing an
escape attempt creates ever lands outside the home. The tests share one instance per address
family (the module-scoped `outside` and `server`), so they stay in this one module.
"""

from __future__ import annotations

import ftplib
import os
from pathlib import Path

import attrs
import pytest

from ftpsup.server.fs import JailedFs
from tests.integration.raw_ftp import send_line as send
from tests.integration.security.attacks import ATTACK, retr, stor
from tests.integration.servers import Server

MARKER = "OUTSIDE_MARKER.txt"
OUTSIDE_DIR = "outside_dir"
SECRET = b"secret bytes that must never leave the server\n"
MARKER_MTIME = 1_000_000_000


def send_raw(ftp: ftplib.FTP, data: bytes) -> str:
    assert ftp.sock is not None
    ftp.sock.sendall(data)
    return ftp.getmultiline()


def listing(ftp: ftplib.FTP, cmd: str) -> tuple[str, list[str]]:
    lines: list[str] = []
    try:
        reply = ftp.retrlines(cmd, lines.append)
    except ftplib.Error as exc:
        reply = str(exc)
    return reply, lines


# -- the world outside the home ------------------------------------------------------------


@attrs.frozen
class Outside:
    """The server's base directory, which holds alice's home and the marker files beside it."""

    base: Path
    home: Path

    def assert_intact(self) -> None:
        for path in (self.base / MARKER, self.base / OUTSIDE_DIR / MARKER):
            assert path.read_bytes() == SECRET
            assert path.stat().st_mode & 0o7777 == 0o644
            assert path.stat().st_mtime == MARKER_MTIME
        assert sorted(os.listdir(self.base / OUTSIDE_DIR)) == [MARKER]
        for root, dirs, files in os.walk(self.base):
            dirs[:] = [d for d in dirs if Path(root, d) != self.home]
            escaped = [n for n in dirs + files if n.startswith("ESCAPED")]
            assert not escaped, f"written outside the home: {root}/{escaped}"


@pytest.fixture(scope="module")
def outside(server: Server) -> Outside:
    base = server.home.parent.parent
    (base / OUTSIDE_DIR).mkdir(exist_ok=True)
    for path in (base / MARKER, base / OUTSIDE_DIR / MARKER):
        path.write_bytes(SECRET)
        path.chmod(0o644)
        os.utime(path, (MARKER_MTIME, MARKER_MTIME))
    return Outside(base, server.home)


OUTSIDE_NAMES = frozenset({MARKER, OUTSIDE_DIR, "users.toml", "_shared.toml", "passwd", "alice"})


def entry_name(line: str) -> str:
    """The name in a LIST, NLST or MLSD line (the test's names hold no spaces)."""
    return line.split(";")[-1].strip() if "=" in line.split(" ")[0] else line.split()[-1]


def assert_no_outside_names(lines: list[str]) -> None:
    assert not {entry_name(line) for line in lines} & OUTSIDE_NAMES


# Directory arguments, from a workdir one level below the home -> where they land.
DIR_ESCAPES = {
    "..": "/",
    "/../..": "/",
    "../../..": "/",
    "../../../../../../../..": "/",
    "../../etc": "/etc",
    "//etc": "/etc",
    "~root": None,
    "/etc/passwd": "/etc/passwd",
    "../../../outside_dir": "/outside_dir",
}


# File arguments that would name the markers or the config if the jail leaked.
FILE_ESCAPES = [
    f"../../../{MARKER}",
    f"/../../../{MARKER}",
    f"../../../../../../../../{MARKER}",
    f"..//..//..//{MARKER}",
    f"../../../{OUTSIDE_DIR}/{MARKER}",
    "../../../etc/users.toml",
    "//etc/passwd",
    "/etc/passwd",
    "~root/.bashrc",
]


@pytest.mark.parametrize("arg", sorted(DIR_ESCAPES))
def test_cwd_outside_the_home_stays_in_the_home(
    ftp: ftplib.FTP, workdir: str, outside: Outside, arg: str
) -> None:
    reply = send(ftp, f"CWD {arg}")
    if DIR_ESCAPES[arg] == "/":
        assert reply.startswith("250")
        assert ftp.pwd() == "/"
    else:
        assert reply.startswith("550")
        assert ftp.pwd() == workdir
    assert_no_outside_names(ftp.nlst())
    assert str(outside.base) not in reply


@pytest.mark.parametrize("verb", ["LIST", "NLST", "MLSD"])
@pytest.mark.parametrize("arg", sorted(DIR_ESCAPES))
def test_listing_an_escape_never_shows_the_outside(
    ftp: ftplib.FTP, server: Server, outside: Outside, verb: str, arg: str
) -> None:
    reply, lines = listing(ftp, f"{verb} {arg}")
    if DIR_ESCAPES[arg] == "/":
        assert reply.startswith("226")
        names = {entry_name(line) for line in lines}
        assert names - {".", ".."} == {n for n in os.listdir(server.home) if not n.startswith(".")}
    else:
        assert reply.startswith("550")
    assert_no_outside_names(lines)


@pytest.mark.parametrize("arg", FILE_ESCAPES)
def test_file_verbs_cannot_reach_a_file_outside_the_home(
    ftp: ftplib.FTP, outside: Outside, arg: str
) -> None:
    reply, data = retr(ftp, f"RETR {arg}")
    assert reply.startswith("550")
    assert data == b""
    for verb in ("SIZE", "MDTM", "DELE", "RNFR"):
        reply = send(ftp, f"{verb} {arg}")
        assert reply.startswith("550"), (verb, reply)
        assert str(outside.base) not in reply
    assert send(ftp, f"SITE CHMOD 777 {arg}").startswith("550")
    assert send(ftp, f"MFMT 20200101000000 {arg}").startswith("550")
    outside.assert_intact()


def _landed_inside(server: Server, arg: str) -> Path | None:
    # Only the marker name directly above the workdir has an existing parent inside the home.
    return server.home / MARKER if arg.endswith(f"/{MARKER}") and OUTSIDE_DIR not in arg else None


@pytest.mark.parametrize("arg", FILE_ESCAPES)
def test_stor_to_an_escape_lands_inside_the_home_or_fails(
    ftp: ftplib.FTP, server: Server, outside: Outside, arg: str
) -> None:
    inside = _landed_inside(server, arg)
    try:
        reply = stor(ftp, f"STOR {arg}")
        if inside is None:
            assert reply.startswith("550")
        else:
            assert reply.startswith("226")
            assert inside.read_bytes() == ATTACK
        outside.assert_intact()
    finally:
        (server.home / MARKER).unlink(missing_ok=True)


@pytest.mark.parametrize("arg", FILE_ESCAPES)
def test_rnto_to_an_escape_stays_inside_the_home(
    ftp: ftplib.FTP, server: Server, workdir: str, outside: Outside, arg: str
) -> None:
    source = server.home / workdir.lstrip("/") / "mine.txt"
    source.write_bytes(b"mine")
    inside = _landed_inside(server, arg)
    try:
        assert send(ftp, "RNFR mine.txt").startswith("350")
        reply = send(ftp, f"RNTO {arg}")
        if inside is None:
            assert reply.startswith("550")
            assert source.read_bytes() == b"mine"
        else:
            assert reply.startswith("250")
            assert inside.read_bytes() == b"mine"
        outside.assert_intact()
    finally:
        (server.home / MARKER).unlink(missing_ok=True)


def test_rnfr_of_the_outside_marker_then_rnto_renames_nothing(
    ftp: ftplib.FTP, outside: Outside
) -> None:
    assert send(ftp, f"RNFR ../../../{MARKER}").startswith("550")
    assert send(ftp, "RNTO ESCAPED_stolen.txt").startswith("503")
    outside.assert_intact()


@pytest.mark.parametrize(
    ("arg", "created"),
    [
        ("../../../ESCAPED_dir", "/ESCAPED_dir"),
        ("/../../ESCAPED_dir", "/ESCAPED_dir"),
        (f"../../../{OUTSIDE_DIR}/ESCAPED_dir", None),
        ("//etc/ESCAPED_dir", None),
    ],
)
def test_mkd_escape_creates_inside_the_home_or_fails(
    ftp: ftplib.FTP, server: Server, outside: Outside, arg: str, created: str | None
) -> None:
    try:
        reply = send(ftp, f"MKD {arg}")
        if created is None:
            assert reply.startswith("550")
        else:
            assert reply == f'257 "{created}" created'
            assert (server.home / created.lstrip("/")).is_dir()
        outside.assert_intact()
    finally:
        if (server.home / "ESCAPED_dir").is_dir():
            (server.home / "ESCAPED_dir").rmdir()


# -- symlinks planted inside the home -------------------------------------------------------


def _plant_link(server: Server, workdir: str, outside: Outside, kind: str, target: str) -> str:
    """A symlink in the workdir to `target` outside the home, absolute or relative."""
    link = server.home / workdir.lstrip("/") / f"link_{kind}"
    if kind == "abs":
        link.symlink_to(outside.base / target)
    else:
        link.symlink_to(Path("../../..") / target)
    assert link.resolve() == (outside.base / target).resolve(), "the link does point outside"
    return link.name


@pytest.mark.parametrize("kind", ["abs", "rel"])
def test_symlink_to_an_outside_directory_never_shows_the_outside(
    ftp: ftplib.FTP, server: Server, workdir: str, outside: Outside, kind: str
) -> None:
    link = _plant_link(server, workdir, outside, kind, OUTSIDE_DIR)
    assert send(ftp, f"CWD {link}").startswith("550")
    reply, lines = listing(ftp, f"LIST {link}")
    assert reply.startswith("550")
    assert_no_outside_names(lines)
    reply, data = retr(ftp, f"RETR {link}/{MARKER}")
    assert reply.startswith("550")
    assert data == b""
    assert stor(ftp, f"STOR {link}/ESCAPED_upload.txt").startswith("550")
    assert stor(ftp, f"STOR {link}/{MARKER}").startswith("550")
    for command in (
        f"DELE {link}/{MARKER}",
        f"RNFR {link}/{MARKER}",
        f"MKD {link}/ESCAPED_dir",
        f"SIZE {link}/{MARKER}",
        f"RMD {link}",
    ):
        assert send(ftp, command)[:3] in ("550", "553"), command
    outside.assert_intact()


@pytest.mark.parametrize("kind", ["abs", "rel"])
def test_symlink_to_an_outside_file_cannot_be_read_changed_or_deleted(
    ftp: ftplib.FTP, server: Server, workdir: str, outside: Outside, kind: str
) -> None:
    link = _plant_link(server, workdir, outside, kind, MARKER)
    reply, data = retr(ftp, f"RETR {link}")
    assert reply.startswith("550")
    assert SECRET not in data
    assert stor(ftp, f"STOR {link}").startswith("550")
    assert stor(ftp, f"APPE {link}").startswith("550")
    for command in (f"SIZE {link}", f"SITE CHMOD 777 {link}", f"MFMT 20200101000000 {link}"):
        assert send(ftp, command).startswith("550"), command
    outside.assert_intact()
    # DELE removes the link itself, never what it points to.
    assert send(ftp, f"DELE {link}").startswith("250")
    assert not (server.home / workdir.lstrip("/") / link).is_symlink()
    outside.assert_intact()


@pytest.mark.parametrize("kind", ["abs", "rel"])
def test_symlink_resolves_inside_the_home_like_a_chroot(
    ftp: ftplib.FTP, server: Server, workdir: str, outside: Outside, kind: str
) -> None:
    if not JailedFs(server.home).uses_openat2:
        pytest.skip("no openat2 on this kernel: ftpsup refuses every symlink instead")
    link = _plant_link(server, workdir, outside, kind, OUTSIDE_DIR)
    # Where the link text leads when "/" is the home, as under a chroot.
    relative = (outside.base / OUTSIDE_DIR).relative_to("/") if kind == "abs" else Path(OUTSIDE_DIR)
    jailed = server.home / relative
    jailed.mkdir(parents=True)
    (jailed / "INSIDE.txt").write_bytes(b"inside the jail")
    try:
        assert send(ftp, f"CWD {link}").startswith("250")
        assert ftp.nlst() == ["INSIDE.txt"]
        assert retr(ftp, "RETR INSIDE.txt")[1] == b"inside the jail"
        reply, data = retr(ftp, f"RETR {MARKER}")
        assert reply.startswith("550")
        assert data == b""
        outside.assert_intact()
    finally:
        top = server.home / relative.parts[0]
        for path in sorted(top.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        top.rmdir()


def test_symlink_loop_is_refused_and_the_session_lives(
    ftp: ftplib.FTP, server: Server, workdir: str
) -> None:
    wd = server.home / workdir.lstrip("/")
    (wd / "loop_a").symlink_to("loop_b")
    (wd / "loop_b").symlink_to("loop_a")
    assert send(ftp, "CWD loop_a").startswith("550")
    assert retr(ftp, "RETR loop_a")[0].startswith("550")
    assert stor(ftp, "STOR loop_a").startswith("550")
    assert send(ftp, "NOOP").startswith("200")


# -- NUL, CR and LF in a path ----------------------------------------------------------------


@pytest.mark.parametrize("char", [b"\x00", b"\r", b"\r\x00"], ids=["nul", "cr", "cr_nul"])
@pytest.mark.parametrize(
    "verb", ["CWD", "RETR", "STOR", "APPE", "DELE", "MKD", "RMD", "RNFR", "SIZE", "MDTM", "LIST"]
)
def test_nul_or_cr_in_a_path_replies_553(
    ftp: ftplib.FTP, server: Server, workdir: str, verb: str, char: bytes
) -> None:
    reply = send_raw(ftp, verb.encode() + b" bad" + char + b"name\r\n")
    assert reply.startswith("553"), reply
    assert os.listdir(server.home / workdir.lstrip("/")) == []


@pytest.mark.parametrize("char", [b"\x00", b"\r"], ids=["nul", "cr"])
def test_nul_or_cr_in_the_rnto_target_replies_553(
    ftp: ftplib.FTP, server: Server, workdir: str, char: bytes
) -> None:
    wd = server.home / workdir.lstrip("/")
    (wd / "src.txt").write_bytes(b"x")
    assert send(ftp, "RNFR src.txt").startswith("350")
    assert send_raw(ftp, b"RNTO dst" + char + b"x\r\n").startswith("553")
    assert os.listdir(wd) == ["src.txt"]


def test_lf_ends_the_command_so_no_name_can_hold_one(
    ftp: ftplib.FTP, server: Server, workdir: str
) -> None:
    # A bare LF is a line end (RFC 959 §4.1.1 lenience), so "a\nb" is two commands.
    assert send_raw(ftp, b"MKD lf\nESCAPED\r\n") == '257 "' + workdir + '/lf" created'
    assert ftp.getmultiline().startswith("500")
    assert os.listdir(server.home / workdir.lstrip("/")) == ["lf"]
