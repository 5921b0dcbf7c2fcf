"""The control connection byte for byte: replies, sequencing, hostile input, login limits.

Rules:
- A plain socket client (RawControl) sends exactly the bytes a test names and reads whole
  replies, multi-line aware, each with a timeout; ftplib would hide or refuse what is tested.
- Every test runs on IPv4 and IPv6: against the module's `server`, or through `server_factory`
  parametrised over both addresses when it needs other settings.
- The last test logs in with ftplib afresh: the abuse above must leave the server serving.
- Protocol rules that need no socket (reply codes per verb, pre-checks, EPSV ALL, HELP, OPTS)
  are tested on the state machine, in tests/proto/session; these tests keep the wire: bytes,
  pipelining, files, logs and the connection's close.
"""

from __future__ import annotations

import ftplib
import random
import socket
from collections.abc import Callable, Iterator

import pytest

from tests.integration.raw_ftp import FtpReply, RawControl, recv_all
from tests.integration.servers import HOSTS, PASSWORD, Server

BANNER = "Welcome to example.com FTP service."
WRONG_PASSWORD = "not-the-password-7Qx"


def is_ipv6(server: Server) -> bool:
    return ":" in server.host


@pytest.fixture
def raw(server: Server) -> Iterator[RawControl]:
    """A control connection that has read the greeting and is not logged in."""
    with RawControl(server.host, server.port) as client:
        assert client.reply().code == 220
        yield client


@pytest.fixture
def session(raw: RawControl) -> RawControl:
    """A control connection logged in as alice."""
    assert raw.login().code == 230
    return raw


def raw_transfer(client: RawControl, host: str, command: str) -> tuple[bytes, FtpReply]:
    """Run one data command over EPSV by hand; returns the data and the final reply."""
    answer = client.command("EPSV")
    assert answer.code == 229, answer
    port = int(answer.text.split("|||", 1)[1].split("|", 1)[0])
    with socket.create_connection((host, port), timeout=10) as conn:
        preliminary = client.command(command)
        assert preliminary.code == 150, preliminary
        data = recv_all(conn)
    return data, client.reply()


def feature_names(reply: FtpReply) -> set[str]:
    names = set()
    for line in reply.lines[1:-1]:
        words = line.split()
        names.add("REST STREAM" if words[0] == "REST" else words[0])
    return names


# -- greeting, verbs, sequencing ------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_greeting_is_220_with_the_banner(server_factory: Callable[..., Server], host: str) -> None:
    srv = server_factory(host, ftpd_banner=BANNER)
    with RawControl(srv.host, srv.port) as client:
        assert client.reply() == FtpReply(220, (BANNER,))


def test_rnfr_then_another_command_then_rnto_replies_503(
    server: Server, session: RawControl, workdir: str
) -> None:
    (server.home / workdir[1:] / "a.txt").write_bytes(b"a")
    assert session.command(f"RNFR {workdir}/a.txt").code == 350
    assert session.command("NOOP").code == 200
    assert session.command(f"RNTO {workdir}/b.txt").code == 503
    assert sorted(p.name for p in (server.home / workdir[1:]).iterdir()) == ["a.txt"]


def test_pipelined_commands_are_answered_in_order(session: RawControl) -> None:
    session.send(b"NOOP\r\nPWD\r\nSYST\r\nTYPE Q\r\nCWD /\r\nFROB\r\nNOOP\r\n")
    codes = [session.reply().code for _ in range(7)]
    assert codes == [200, 257, 215, 504, 250, 500, 200]


# -- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10 * 1024, 1024 * 1024], ids=["10KB", "1MB"])
def test_overlong_line_replies_500_once_and_the_session_lives(
    session: RawControl, size: int
) -> None:
    session.send(b"NOOP " + b"x" * size + b"\r\n")
    assert session.reply().code == 500
    assert session.command("NOOP").code == 200
    assert session.command("PWD").code == 257


def garbage_lines() -> list[bytes]:
    rng = random.Random(959)
    lines = [rng.randbytes(rng.randrange(1, 300)).replace(b"\n", b"") for _ in range(20)]
    return [
        *lines,
        b"\x00\x00\x00",
        b"NO\x00OP",
        b"\r\r\r",
        b"",
        b"\xff\xff\xff\xff",
        b"\xff\xfb",
        b"\xc3\x28 invalid utf-8",
    ]


def test_garbage_bytes_get_replies_and_the_session_lives(session: RawControl) -> None:
    for line in garbage_lines():
        assert 400 <= session.command(line).code < 600, line
    assert session.command("NOOP").code == 200


@pytest.mark.parametrize(
    "line",
    [b"\xff\xfb\x01\xff\xfd\x03NOOP", b"\xff\xf4\xff\xf2NOOP", b"\xf2NOOP", b"NO\xff\xf1OP"],
    ids=["negotiation", "interrupt-synch", "lone-dm", "telnet-nop-inside"],
)
def test_telnet_sequences_are_taken_out_of_the_line(session: RawControl, line: bytes) -> None:
    assert session.command(line).code == 200


# -- FEAT, OPTS, STAT, MLST -----------------------------------------------------------------


def test_feat_lists_exactly_the_enabled_features(server: Server, raw: RawControl) -> None:
    answer = raw.command("FEAT")
    assert answer.code == 211
    assert all(line.startswith(" ") for line in answer.lines[1:-1])
    # PASV answers 522 on IPv6 (RFC 2428 §2), so only IPv4 lists it.
    assert feature_names(answer) == {
        "EPRT",
        "EPSV",
        "MDTM",
        "MFMT",
        "MLST",
        "REST STREAM",
        "SIZE",
        "TVFS",
        "UTF8",
    } | (set() if is_ipv6(server) else {"PASV"})


def test_opts_mlst_selects_the_facts_mlsd_sends(
    server: Server, session: RawControl, workdir: str
) -> None:
    (server.home / workdir[1:] / "a.txt").write_bytes(b"abc")
    assert session.command("OPTS MLST type;size;").code == 200
    data, final = raw_transfer(session, server.host, f"MLSD {workdir}")
    assert final.code == 226
    assert data == b"type=file;size=3; a.txt\r\n"
    assert (
        session.command(f"MLST {workdir}/a.txt").lines[1] == f" type=file;size=3; {workdir}/a.txt"
    )
    feat = session.command("FEAT").text
    assert "MLST type*;size*;modify;perm;unique;UNIX.mode;" in feat


def test_stat_of_a_directory_lists_it_on_the_control_connection(
    server: Server, session: RawControl, workdir: str
) -> None:
    (server.home / workdir[1:] / "listed file.txt").write_bytes(b"12345")
    answer = session.command(f"STAT {workdir}")
    assert answer.code == 213
    rows = [line for line in answer.lines if line.endswith(" listed file.txt")]
    assert len(rows) == 1
    assert rows[0].split()[4] == "5"


def test_mlst_of_a_file_replies_250_with_one_fact_line(
    server: Server, session: RawControl, workdir: str
) -> None:
    (server.home / workdir[1:] / "m.txt").write_bytes(b"1234567")
    answer = session.command(f"MLST {workdir}/m.txt")
    assert answer.code == 250
    facts = [line for line in answer.lines if line.startswith(" ")]
    assert len(facts) == 1
    assert facts[0].startswith(" type=file;size=7;")
    assert facts[0].endswith(f"; {workdir}/m.txt")


# -- HTTP ------------------------------------------------------------------------------------


def test_http_request_before_login_gets_421_and_close(raw: RawControl) -> None:
    raw.send(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert raw.reply().code == 421
    assert raw.is_closed()


# -- session end and login limits -----------------------------------------------------------


def test_rein_logs_out(session: RawControl) -> None:
    assert session.command("REIN").code == 220
    assert session.command("PWD").code == 530
    assert session.login().code == 230
    assert session.command("PWD").code == 257


def test_quit_replies_221_and_closes(session: RawControl) -> None:
    assert session.command("QUIT").code == 221
    assert session.is_closed()


def test_wrong_password_replies_530(server: Server, raw: RawControl) -> None:
    assert raw.login(password=WRONG_PASSWORD).code == 530
    assert raw.command("PWD").code == 530
    assert raw.login().code == 230


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_max_login_fails_closes_after_the_second_failure(
    server_factory: Callable[..., Server], host: str
) -> None:
    srv = server_factory(host, max_login_fails=2)
    with RawControl(srv.host, srv.port) as client:
        client.reply()
        assert client.login(password=WRONG_PASSWORD).code == 530
        assert client.command("NOOP").code == 200
        assert client.login(password=WRONG_PASSWORD + "2").code == 530
        assert client.is_closed()
    log = srv.log_text()
    assert "PASS <hidden>" in log
    assert WRONG_PASSWORD not in log


def test_passwords_never_appear_in_the_log(server: Server, raw: RawControl) -> None:
    assert raw.login(password=WRONG_PASSWORD).code == 530
    assert raw.login().code == 230
    log = server.log_text()
    assert "PASS <hidden>" in log
    assert WRONG_PASSWORD not in log
    assert PASSWORD not in log


# -- last: the server is still healthy ------------------------------------------------------


def test_fresh_ftplib_login_still_works(server: Server) -> None:
    assert server.process.poll() is None
    with server.connect() as client:
        assert client.pwd() == "/"
        assert isinstance(client, ftplib.FTP)
        assert client.voidcmd("NOOP").startswith("200")


def test_command_pipelined_behind_a_transfer_is_answered_after_its_150(server: Server) -> None:
    with RawControl(server.host, server.port) as control:
        control.reply()
        assert control.login().code == 230
        for _ in range(5):
            passive = control.command("EPSV")
            port = int(passive.text.split("|")[3])
            with socket.create_connection((server.host, port), timeout=10) as data:
                control.send(b"LIST\r\nNOOP\r\n")
                codes = [control.reply().code for _ in range(3)]
                data.settimeout(10)
                while data.recv(65536):
                    pass
            assert codes in ([150, 200, 226], [150, 226, 200]), codes
