"""Security behaviour of a real ftpsup instance: the home jail, bounce and theft protection,
write permissions, anonymous access and live changes to the user store.

Marker files are planted OUTSIDE alice's home, in the server's base directory; every escape
test proves they are never listed, read, overwritten, renamed or deleted, and that nothing an
escape attempt creates ever lands outside the home.
"""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from ftpsup.server.fs import JailedFs
from tests.integration.conftest import (
    PASSWORD,
    USER,
    Server,
    add_user,
    anonymous_login,
    login_reply,
)

MARKER = "OUTSIDE_MARKER.txt"
OUTSIDE_DIR = "outside_dir"
SECRET = b"secret bytes that must never leave the server\n"
MARKER_MTIME = 1_000_000_000
ATTACK = b"attacker bytes\n"
TIMEOUT = 10

ServerFactory = Callable[..., Server]


# -- helpers -------------------------------------------------------------------------------


def send(ftp: ftplib.FTP, line: str) -> str:
    """Send one command and return the whole reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()


def send_raw(ftp: ftplib.FTP, data: bytes) -> str:
    assert ftp.sock is not None
    ftp.sock.sendall(data)
    return ftp.getmultiline()


def retr(ftp: ftplib.FTP, cmd: str) -> tuple[str, bytes]:
    chunks: list[bytes] = []
    try:
        reply = ftp.retrbinary(cmd, chunks.append)
    except ftplib.Error as exc:
        reply = str(exc)
    return reply, b"".join(chunks)


def listing(ftp: ftplib.FTP, cmd: str) -> tuple[str, list[str]]:
    lines: list[str] = []
    try:
        reply = ftp.retrlines(cmd, lines.append)
    except ftplib.Error as exc:
        reply = str(exc)
    return reply, lines


def stor(ftp: ftplib.FTP, cmd: str, data: bytes = ATTACK) -> str:
    try:
        return ftp.storbinary(cmd, io.BytesIO(data))
    except ftplib.Error as exc:
        return str(exc)


def ftpsup_cli(config_dir: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "ftpsup", "--config-dir", str(config_dir), "user", *args],
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """(mode, size, mtime_ns) of everything under root, to prove nothing changed."""
    out: dict[str, tuple[int, int, int]] = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def ftp(server: Server, workdir: str) -> Iterator[ftplib.FTP]:
    """alice, logged in, in the test's workdir."""
    client = server.connect(timeout=TIMEOUT)
    client.cwd(workdir)
    yield client
    client.close()


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


# -- FTP bounce (RFC 2577 §3) ----------------------------------------------------------------


def _active_args(server: Server, host: str, port: int) -> str:
    family = 2 if ":" in server.host else 1
    return f"EPRT |{family}|{host}|{port}|"


def test_port_to_another_host_is_refused(ftp: ftplib.FTP, server: Server) -> None:
    if ":" in server.host:
        commands = [_active_args(server, "::2", 40000), _active_args(server, "2001:db8::1", 40000)]
    else:
        commands = ["PORT 127,0,0,2,156,64", "EPRT |1|127.0.0.2|40000|", "PORT 192,0,2,1,156,64"]
    for command in commands:
        assert send(ftp, command) == f"500 Illegal {command.split()[0]} command.", command
        # No target was recorded: a transfer now has no data connection to use.
        assert send(ftp, "LIST").startswith("425")
    # The log line may be written just after the reply: waited for, within TIMEOUT.
    assert _wait_for_log(server, "refused")


def test_port_to_a_privileged_port_is_refused(ftp: ftplib.FTP, server: Server) -> None:
    if ":" in server.host:
        commands = ["EPRT |2|::1|80|", "EPRT |2|::1|1023|", "EPRT |2|::|21|"]
    else:
        commands = ["PORT 127,0,0,1,0,80", "PORT 127,0,0,1,3,255", "EPRT |1|127.0.0.1|21|"]
    for command in commands:
        assert send(ftp, command) == f"500 Illegal {command.split()[0]} command.", command
        assert send(ftp, "LIST").startswith("425")


def _serve_active_listing(ftp: ftplib.FTP, listener: socket.socket, command: str) -> bytes:
    """Issue PORT/EPRT `command`, then LIST, and collect what arrives at `listener`."""
    assert send(ftp, command).startswith("200")
    ftp.putcmd("LIST")
    assert ftp.getresp().startswith("150")
    listener.settimeout(TIMEOUT)
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(TIMEOUT)
        data = b"".join(iter(lambda: conn.recv(65536), b""))
    assert ftp.getresp().startswith("226")
    return data


def test_eprt_with_the_unspecified_address_connects_back_to_the_client(
    ftp: ftplib.FTP, server: Server, workdir: str
) -> None:
    (server.home / workdir.lstrip("/") / "seen.txt").write_bytes(b"x")
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    with socket.socket(family) as listener:
        listener.bind((server.host, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        unspecified = "::" if family == socket.AF_INET6 else "0.0.0.0"
        data = _serve_active_listing(ftp, listener, _active_args(server, unspecified, port))
    assert b"seen.txt" in data


def test_port_promiscuous_allows_another_host(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1", port_promiscuous=True)
    (srv.home / "seen.txt").write_bytes(b"x")
    ftp = srv.connect(timeout=TIMEOUT)
    with socket.socket() as listener, ftp:
        listener.bind(("127.0.0.2", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        data = _serve_active_listing(ftp, listener, f"PORT 127,0,0,2,{port >> 8},{port & 255}")
    assert b"seen.txt" in data


# -- passive connection theft -----------------------------------------------------------------


def _pasv_port(ftp: ftplib.FTP) -> int:
    return ftplib.parse227(send(ftp, "PASV"))[1]


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(TIMEOUT)
    try:
        return b"".join(iter(lambda: sock.recv(65536), b""))
    except ConnectionResetError:
        return b""


def _wait_for_log(srv: Server, text: str) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if text in srv.log_text():
            return True
        time.sleep(0.05)
    return False


def test_passive_connection_from_another_address_is_refused_and_logged(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1")
    (srv.home / "seen.txt").write_bytes(b"x")
    with srv.connect(timeout=TIMEOUT) as ftp:
        port = _pasv_port(ftp)
        thief = socket.create_connection(("127.0.0.1", port), TIMEOUT, ("127.0.0.2", 0))
        with thief:
            ftp.putcmd("LIST")
            assert ftp.getresp().startswith("150")
            assert _read_all(thief) == b""
        with socket.create_connection(("127.0.0.1", port), TIMEOUT) as real:
            assert b"seen.txt" in _read_all(real)
        assert ftp.getresp().startswith("226")
    assert _wait_for_log(srv, f"passive connection to port {port} from 127.0.0.2 refused")


def test_pasv_promiscuous_serves_a_connection_from_another_address(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1", pasv_promiscuous=True)
    (srv.home / "seen.txt").write_bytes(b"x")
    with srv.connect(timeout=TIMEOUT) as ftp:
        port = _pasv_port(ftp)
        with socket.create_connection(("127.0.0.1", port), TIMEOUT, ("127.0.0.2", 0)) as other:
            ftp.putcmd("LIST")
            assert ftp.getresp().startswith("150")
            assert b"seen.txt" in _read_all(other)
        assert ftp.getresp().startswith("226")


# -- write permissions ----------------------------------------------------------------------

WRITE_COMMANDS = [
    "STOR new.txt",
    "APPE file.txt",
    "STOU",
    "STOU new",
    "DELE file.txt",
    "MKD newdir",
    "RMD sub",
    "RNFR file.txt",
    "RNTO other.txt",
    "MFMT 20200101000000 file.txt",
    "SITE CHMOD 777 file.txt",
]


def _refusals(ftp: ftplib.FTP) -> dict[str, str]:
    """Each write command whose reply is not 550, with that reply."""
    wrong = {}
    for command in WRITE_COMMANDS:
        if command.startswith(("STOR", "APPE", "STOU")):
            reply = stor(ftp, command)
        else:
            reply = send(ftp, command)
        if not reply.startswith("550"):
            wrong[command] = reply
    return wrong


def _fill(home: Path) -> bytes:
    data = os.urandom(4096)
    (home / "file.txt").write_bytes(data)
    (home / "sub").mkdir(exist_ok=True)
    return data


def test_write_enable_false_refuses_every_write_and_changes_nothing(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1", write_enable=False)
    data = _fill(srv.home)
    before = snapshot(srv.home)
    with srv.connect(timeout=TIMEOUT) as ftp:
        assert _refusals(ftp) == {}
        assert snapshot(srv.home) == before
        reply, got = retr(ftp, "RETR file.txt")
        assert reply.startswith("226")
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        assert sorted(ftp.nlst()) == ["file.txt", "sub"]


def test_read_only_user_gets_550_for_writes(server: Server) -> None:
    home = server.home.parent / "bob"
    add_user(server.config_dir, "bob", "bob password", home, "--read-only", "--replace")
    data = _fill(home)
    before = snapshot(home)
    ftp = ftplib.FTP(timeout=TIMEOUT)
    with ftp:
        ftp.connect(server.host, server.port)
        ftp.login("bob", "bob password")
        assert _refusals(ftp) == {}
        assert retr(ftp, "RETR file.txt") == ("226 Transfer complete.", data)
    assert snapshot(home) == before


# -- anonymous --------------------------------------------------------------------------------


def _anon_server(server_factory: ServerFactory, tmp_path: Path, **settings: object) -> Server:
    root = tmp_path / "anon"
    root.mkdir()
    (root / "pub.txt").write_bytes(b"public")
    return server_factory("127.0.0.1", anonymous_enable=True, anon_root=str(root), **settings)


def test_anonymous_can_read_but_not_write(server_factory: ServerFactory, tmp_path: Path) -> None:
    srv = _anon_server(server_factory, tmp_path)
    with anonymous_login(srv) as ftp:
        assert retr(ftp, "RETR pub.txt") == ("226 Transfer complete.", b"public")
        assert stor(ftp, "STOR up.txt").startswith("550")
        assert send(ftp, "DELE pub.txt").startswith("550")
        assert send(ftp, "MKD d").startswith("550")
    assert sorted(os.listdir(tmp_path / "anon")) == ["pub.txt"]


def test_anon_upload_enable_allows_stor_but_not_dele(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    srv = _anon_server(server_factory, tmp_path, anon_upload_enable=True)
    with anonymous_login(srv) as ftp:
        assert stor(ftp, "STOR up.txt", b"uploaded").startswith("226")
        assert send(ftp, "DELE pub.txt").startswith("550")
        assert send(ftp, "RNFR pub.txt").startswith("550")
    assert (tmp_path / "anon" / "up.txt").read_bytes() == b"uploaded"
    assert (tmp_path / "anon" / "pub.txt").read_bytes() == b"public"


def test_anon_other_write_enable_allows_dele(server_factory: ServerFactory, tmp_path: Path) -> None:
    srv = _anon_server(
        server_factory, tmp_path, anon_upload_enable=True, anon_other_write_enable=True
    )
    with anonymous_login(srv) as ftp:
        assert send(ftp, "DELE pub.txt").startswith("250")
    assert not (tmp_path / "anon" / "pub.txt").exists()


def test_anonymous_is_refused_when_disabled(server: Server) -> None:
    with server.connect(login=False, timeout=TIMEOUT) as ftp:
        assert send(ftp, "USER anonymous").startswith("530")
        assert send(ftp, "USER ftp").startswith("530")


# -- live changes to the user store ----------------------------------------------------------


def test_disabled_user_cannot_log_in_without_restart(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1")
    assert login_reply(srv, USER, PASSWORD).startswith("230")
    ftpsup_cli(srv.config_dir, "disable", USER)
    assert login_reply(srv, USER, PASSWORD).startswith("530")
    ftpsup_cli(srv.config_dir, "enable", USER)
    assert login_reply(srv, USER, PASSWORD).startswith("230")
    assert srv.process.poll() is None, "the server was not restarted"


def test_user_passwd_takes_effect_without_restart(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1")
    ftpsup_cli(srv.config_dir, "passwd", USER, "--password-stdin", stdin="brand new\n")
    assert login_reply(srv, USER, PASSWORD).startswith("530")
    assert login_reply(srv, USER, "brand new").startswith("230")
    assert srv.process.poll() is None
