"""Access rules of a real ftpsup instance: write_enable and read-only users, anonymous access
and its upload and write settings, and live changes to the user store taking effect without a
restart.
"""

from __future__ import annotations

import ftplib
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.raw_ftp import send_line as send
from tests.integration.security.attacks import TIMEOUT, ServerFactory, retr, stor
from tests.integration.servers import PASSWORD, USER, Server, add_user, anonymous_login, login_reply


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
