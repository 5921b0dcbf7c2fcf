"""Client input that once reached the disk or the log unchecked, against a real instance.

- SITE CHMOD and uploads never leave a setuid, setgid or sticky file (a stored /usr/bin/id
  made setuid ran as root for any local account); chmod_enable turns SITE CHMOD off.
- Numbers are ASCII digits only: "REST ²" raised ValueError (a 451 and a traceback) and
  "REST ٣" was taken as 3.
- Names with CR or LF never reach the wire raw: NLST sent them as they were, so a file named
  "x\\r\\n226 fake" forged a line of the listing.
"""

from __future__ import annotations

import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.raw_ftp import FtpReply, RawControl, recv_all
from tests.integration.servers import Server

ServerFactory = Callable[..., Server]


@pytest.fixture
def session(server: Server, workdir: str) -> Iterator[RawControl]:
    """alice, logged in on a raw control connection, in the test's workdir."""
    with RawControl(server.host, server.port) as client:
        assert client.reply().code == 220
        assert client.login().code == 230
        assert client.command(f"CWD {workdir}").code == 250
        yield client


def on_disk(server: Server, vpath: str) -> Path:
    return server.home / vpath.lstrip("/")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def epsv_transfer(client: RawControl, host: str, command: str, data: bytes = b"") -> FtpReply:
    """Run one data command over EPSV; returns the final reply (and sends `data` if any)."""
    answer = client.command("EPSV")
    assert answer.code == 229, answer
    port = int(answer.text.split("|||", 1)[1].split("|", 1)[0])
    with socket.create_connection((host, port), timeout=10) as conn:
        assert client.command(command).code == 150
        if data:
            conn.sendall(data)
        else:
            recv_all(conn)
    return client.reply()


def epsv_download(client: RawControl, host: str, command: str) -> tuple[bytes, FtpReply]:
    answer = client.command("EPSV")
    assert answer.code == 229, answer
    port = int(answer.text.split("|||", 1)[1].split("|", 1)[0])
    with socket.create_connection((host, port), timeout=10) as conn:
        assert client.command(command).code == 150
        data = recv_all(conn)
    return data, client.reply()


# -- modes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["4755", "2755", "1777", "6777", "04755"])
def test_site_chmod_never_sets_setuid_setgid_or_sticky(
    server: Server, session: RawControl, workdir: str, mode: str
) -> None:
    assert epsv_transfer(session, server.host, "STOR idbin", b"\x7fELF").code == 226
    answer = session.command(f"SITE CHMOD {mode} idbin")
    assert answer.code == 200, answer
    assert mode_of(on_disk(server, f"{workdir}/idbin")) == int(mode, 8) & 0o777


def test_stor_over_a_setuid_file_leaves_it_without_setuid(
    server: Server, session: RawControl, workdir: str
) -> None:
    target = on_disk(server, f"{workdir}/tool")
    target.write_bytes(b"old")
    target.chmod(0o6755)
    assert epsv_transfer(session, server.host, "STOR tool", b"new contents").code == 226
    assert target.read_bytes() == b"new contents"
    assert mode_of(target) == 0o755


def test_chmod_enable_false_refuses_site_chmod(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1", chmod_enable=False)
    target = srv.home / "f"
    srv.home.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"x")
    target.chmod(0o644)
    with RawControl(srv.host, srv.port) as client:
        assert client.reply().code == 220
        assert client.login().code == 230
        answer = client.command("SITE CHMOD 777 f")
        assert answer.code == 502, answer
        help_text = client.command("SITE HELP")
        assert help_text.code == 214
        assert "CHMOD" not in help_text.text
        assert client.command("SITE UMASK 027").code == 200
    assert mode_of(target) == 0o644


# -- numbers ---------------------------------------------------------------------------------

# Superscript two passes str.isdigit but not int(). One case end to end, with the log checked
# for a traceback; every number-taking verb is tested on the state machine
# (tests/proto/session/test_verbs.py, UNICODE_NUMBERS).
UNICODE_NUMBERS = ["REST \u00b2"]


@pytest.mark.parametrize("line", UNICODE_NUMBERS)
def test_numbers_in_other_scripts_or_out_of_bounds_are_refused_with_501(
    server: Server, session: RawControl, line: str
) -> None:
    tracebacks = server.log_text().count("Traceback")
    answer = session.command(line)
    assert answer.code == 501, answer
    assert session.command("NOOP").code == 200
    # The NOOP's reply came after any log line the command wrote.
    assert server.log_text().count("Traceback") == tracebacks


# -- names with CR or LF ------------------------------------------------------------------

FORGED = "x\r\n226 fake"


@pytest.mark.parametrize("verb", ["NLST", "LIST", "MLSD"])
def test_listings_never_split_a_name_holding_cr_or_lf(
    server: Server, session: RawControl, workdir: str, verb: str
) -> None:
    (on_disk(server, workdir) / FORGED).write_bytes(b"")
    data, final = epsv_download(session, server.host, verb)
    assert final.code == 226
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    assert not any(b"\r" in line or b"\n" in line for line in lines)
    assert not any(line.startswith(b"226") for line in lines)
    assert any(line.endswith(b"x??226 fake") for line in lines)


def test_stat_of_a_directory_never_splits_a_name_holding_cr_or_lf(
    server: Server, session: RawControl, workdir: str
) -> None:
    (on_disk(server, workdir) / FORGED).write_bytes(b"")
    answer = session.command("STAT .")
    assert answer.code == 213, answer
    assert not any(line.startswith("226") for line in answer.lines)
    assert any(line.endswith("x??226 fake") for line in answer.lines)
    assert session.command("NOOP").code == 200


@pytest.mark.parametrize(
    "line",
    [b"OPTS A\r226 fake", b"SITE X\r226 fake", b"MKD a\r226 fake", b'RNFR a\r257 "/"'],
)
def test_a_cr_in_echoed_client_text_never_splits_a_reply(session: RawControl, line: bytes) -> None:
    session.send(line + b"\r\nNOOP\r\n")
    answer = session.reply()
    assert answer.code >= 500, answer
    assert len(answer.lines) == 1
    # The next reply on the wire is the NOOP's: no forged line came in between.
    assert session.reply().code == 200
