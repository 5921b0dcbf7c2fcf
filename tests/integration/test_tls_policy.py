"""FTPS policy on a real instance: forced TLS at the transfer, AUTH, REIN, anonymous over TLS.

The policy's replies (AUTH, PBSZ, PROT, CCC, the force_* keys, FEAT) are tested on the state
machine, in tests/proto/session/test_tls.py; these tests keep what needs a real client: TLS
handshakes, transfers, the files they leave, and bytes sent behind AUTH TLS.

Rules:
- Replies are read whole off the wire (send_line), so the exact code and the words an admin
  or a client sees are what the tests check.
- Each refusal is checked together with what still works, so a test cannot pass by the server
  refusing everything.
"""

from __future__ import annotations

import ftplib
import io
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.clients import run_curl
from tests.integration.ftps import (
    CertPair,
    ReusingFTP_TLS,
    client_context,
    connect_tls,
    sha256_hex,
    tls_payload,
    tls_settings,
)
from tests.integration.raw_ftp import send_line
from tests.integration.servers import HOSTS, Server

TIMEOUT = 10
ServerFactory = Callable[..., Server]


def plain(srv: Server) -> ftplib.FTP:
    """A control connection without TLS, not logged in."""
    return srv.connect(login=False, timeout=TIMEOUT)


def upload_reply(ftp: ftplib.FTP, name: str, data: bytes) -> str:
    try:
        return ftp.storbinary(f"STOR {name}", io.BytesIO(data))
    except ftplib.Error as exc:
        return str(exc)


# -- forcing -------------------------------------------------------------------------------


def test_transfer_without_prot_p_is_refused_with_521(tls_server: Server) -> None:
    # One verb end to end; every transfer verb is refused on the state machine
    # (tests/proto/session/test_tls.py).
    ftp = connect_tls(tls_server, prot_p=False, timeout=TIMEOUT)
    try:
        assert send_line(ftp, "PBSZ 0").startswith("200")
        passive = send_line(ftp, "EPSV")
        refused = send_line(ftp, "LIST")
    finally:
        ftp.close()

    assert passive.startswith("229"), passive
    assert refused.startswith("521 "), refused
    assert "PROT P" in refused, refused


def test_prot_c_before_login_is_caught_by_521_at_the_transfer(tls_server: Server) -> None:
    ftp = connect_tls(tls_server, login=False, timeout=TIMEOUT)
    try:
        # vsftpd accepts PROT C before it knows the user; the transfer is what gets refused.
        assert send_line(ftp, "PBSZ 0").startswith("200")
        early = send_line(ftp, "PROT C")
        ftp.login(tls_server.user, tls_server.password)
        ftp.set_pasv(True)
        refused = upload_reply(ftp, "clear.bin", b"must not arrive")
    finally:
        ftp.close()

    assert early.startswith("200"), early
    assert refused.startswith("521"), refused
    assert not (tls_server.home / "clear.bin").exists()


@pytest.mark.parametrize("host", HOSTS)
def test_prot_c_transfers_in_clear_when_data_is_not_forced(
    server_factory: ServerFactory, tls_cert: CertPair, host: str
) -> None:
    srv = server_factory(host, **tls_settings(tls_cert, force_local_data_ssl=False))
    data = tls_payload(300_000, seed=10)
    ftp = connect_tls(srv, prot_p=False, timeout=TIMEOUT)
    try:
        assert ftp.prot_c().startswith("200")
        stored = ftp.storbinary("STOR clear.bin", io.BytesIO(data))
        chunks: list[bytes] = []
        fetched = ftp.retrbinary("RETR clear.bin", chunks.append)
    finally:
        ftp.close()
    # curl --ftp-ssl-control: TLS for the login, clear data (PROT C).
    curl = run_curl("--ftp-ssl-control", "-k", srv.url("/clear.bin"))

    assert stored.startswith("226")
    assert fetched.startswith("226")
    assert sha256_hex(b"".join(chunks)) == sha256_hex(data)
    assert (srv.home / "clear.bin").read_bytes() == data
    assert curl.returncode == 0, curl.stderr[-2000:]
    assert "PROT C" in curl.sent
    assert sha256_hex(curl.stdout) == sha256_hex(data)


# -- AUTH, REIN ------------------------------------------------------------------------------


def test_auth_ssl_is_accepted_as_an_alias_of_auth_tls(tls_server: Server) -> None:
    ftp = ReusingFTP_TLS(context=client_context(), timeout=TIMEOUT)
    try:
        ftp.connect(tls_server.host, tls_server.port)
        reply = send_line(ftp, "AUTH SSL")
        assert reply.startswith("234"), reply
        assert ftp.sock is not None
        ftp.sock = ftp.context.wrap_socket(ftp.sock, server_hostname=ftp.host)
        ftp.file = ftp.sock.makefile("r", encoding=ftp.encoding)
        login = ftp.login(tls_server.user, tls_server.password)
    finally:
        ftp.close()

    assert login.startswith("230"), login


def test_commands_pipelined_behind_auth_tls_in_plain_text_are_dropped(tls_server: Server) -> None:
    # RFC 4217 §4: nothing sent before the handshake may be taken as protected (the STARTTLS
    # command-injection class of bugs).
    with socket.create_connection((tls_server.host, tls_server.port), timeout=TIMEOUT) as raw:
        control = raw.makefile("rb")
        assert control.readline().startswith(b"220")
        raw.sendall(b"AUTH TLS\r\nUSER injected\r\n")
        assert control.readline().startswith(b"234")
        with client_context().wrap_socket(raw, server_hostname=tls_server.host) as tls:
            tls.sendall(b"NOOP\r\n")
            first = tls.makefile("rb").readline()

    assert first.startswith(b"200"), first


def test_rein_keeps_tls_and_resets_prot(tls_server: Server) -> None:
    data = tls_payload(10_000, seed=11)
    ftp = connect_tls(tls_server, timeout=TIMEOUT)
    try:
        rein = send_line(ftp, "REIN")
        status = send_line(ftp, "STAT")
        # A forced-TLS login succeeds without a new AUTH: the control connection is still TLS.
        login = ftp.login(tls_server.user, tls_server.password)
        # ftplib still believes PROT P is on and wraps the data connection; the server has
        # reset it and must refuse before any data moves.
        refused = upload_reply(ftp, "rein.bin", data)
        ftp.prot_p()
        stored = upload_reply(ftp, "rein.bin", data)
    finally:
        ftp.close()

    assert rein.startswith("220"), rein
    assert "Control connection is TLS" in status
    assert "Data connections will be plain" in status
    assert login.startswith("230"), login
    assert refused.startswith("521"), refused
    assert stored.startswith("226"), stored
    assert (tls_server.home / "rein.bin").read_bytes() == data


# -- anonymous -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_anonymous_after_auth_tls_is_refused_when_allow_anon_ssl_is_false(
    server_factory: ServerFactory, tls_cert: CertPair, tmp_path: Path, host: str
) -> None:
    pub = tmp_path / "pub"
    pub.mkdir()
    (pub / "readme.txt").write_bytes(b"public\n")
    srv = server_factory(
        host,
        **tls_settings(tls_cert, anonymous_enable=True, anon_root=str(pub), allow_anon_ssl=False),
    )
    ftps = connect_tls(srv, login=False, timeout=TIMEOUT)
    try:
        refused = send_line(ftps, "USER anonymous")
        local = send_line(ftps, f"USER {srv.user}")
    finally:
        ftps.close()
    # Without TLS, anonymous is welcome (force_anon_logins_ssl is false by default).
    ftp = plain(srv)
    try:
        welcome = ftp.login("anonymous", "guest@example.com")
        chunks: list[bytes] = []
        ftp.retrbinary("RETR readme.txt", chunks.append)
    finally:
        ftp.close()

    assert refused.startswith("530 "), refused
    assert local.startswith("331"), local
    assert welcome.startswith("230"), welcome
    assert b"".join(chunks) == b"public\n"
