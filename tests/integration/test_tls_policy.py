"""FTPS policy on a real instance: forced TLS, AUTH/PBSZ/PROT/CCC/REIN replies, FEAT, anonymous.

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
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    HOSTS,
    CertPair,
    ReusingFTP_TLS,
    Server,
    client_context,
    connect_tls,
    run_curl,
    send_line,
    sha256_hex,
    tls_payload,
    tls_settings,
)

TIMEOUT = 10
ServerFactory = Callable[..., Server]


def plain(srv: Server) -> ftplib.FTP:
    """A control connection without TLS, not logged in."""
    return srv.connect(login=False, timeout=TIMEOUT)


@pytest.fixture
def tls_login(tls_server: Server) -> Iterator[ReusingFTP_TLS]:
    """alice over TLS, logged in, PBSZ 0 and PROT P done."""
    client = connect_tls(tls_server, timeout=TIMEOUT)
    yield client
    client.close()


def feat_lines(ftp: ftplib.FTP) -> set[str]:
    reply = send_line(ftp, "FEAT")
    assert reply.startswith("211-"), reply
    return {line.strip() for line in reply.splitlines()[1:-1]}


def upload_reply(ftp: ftplib.FTP, name: str, data: bytes) -> str:
    try:
        return ftp.storbinary(f"STOR {name}", io.BytesIO(data))
    except ftplib.Error as exc:
        return str(exc)


# -- forcing -------------------------------------------------------------------------------


def test_user_before_auth_tls_is_refused_with_530_naming_auth_tls(tls_server: Server) -> None:
    ftp = plain(tls_server)
    try:
        user = send_line(ftp, f"USER {tls_server.user}")
        pass_ = send_line(ftp, f"PASS {tls_server.password}")
        # The same connection may still upgrade and log in.
        auth = send_line(ftp, "AUTH TLS")
    finally:
        ftp.close()

    assert user.startswith("530 "), user
    assert "AUTH TLS" in user, user
    assert pass_.startswith("503"), pass_
    assert auth.startswith("234"), auth


def test_prot_c_after_login_is_refused_with_534_when_data_must_be_encrypted(
    tls_login: ReusingFTP_TLS,
) -> None:
    refused = send_line(tls_login, "PROT C")
    still_private = send_line(tls_login, "PROT P")
    names = tls_login.nlst()

    assert refused.startswith("534 "), refused
    assert still_private.startswith("200"), still_private
    assert isinstance(names, list)


@pytest.mark.parametrize("verb", ["LIST", "NLST", "MLSD", "RETR x.bin", "STOR x.bin", "APPE x.bin"])
def test_transfer_without_prot_p_is_refused_with_521(tls_server: Server, verb: str) -> None:
    ftp = connect_tls(tls_server, prot_p=False, timeout=TIMEOUT)
    try:
        assert send_line(ftp, "PBSZ 0").startswith("200")
        passive = send_line(ftp, "EPSV")
        refused = send_line(ftp, verb)
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


# -- FEAT ----------------------------------------------------------------------------------


TLS_FEATURES = {"AUTH TLS", "PBSZ", "PROT"}


def test_feat_lists_auth_tls_pbsz_and_prot_when_ssl_enable(tls_server: Server) -> None:
    ftp = plain(tls_server)
    try:
        before_auth = feat_lines(ftp)
    finally:
        ftp.close()
    ftps = connect_tls(tls_server, timeout=TIMEOUT)
    try:
        after_login = feat_lines(ftps)
    finally:
        ftps.close()

    assert before_auth >= TLS_FEATURES, before_auth
    assert after_login >= TLS_FEATURES, after_login


def test_feat_lists_no_tls_feature_without_ssl_enable(server: Server) -> None:
    ftp = plain(server)
    try:
        features = feat_lines(ftp)
        auth = send_line(ftp, "AUTH TLS")
    finally:
        ftp.close()

    assert not TLS_FEATURES & features, features
    assert {"EPSV", "SIZE", "UTF8"} <= features
    assert auth.startswith("502"), auth


@pytest.mark.parametrize("host", HOSTS)
def test_feat_on_an_implicit_instance_lists_pbsz_and_prot_but_no_auth(
    server_factory: ServerFactory, tls_cert: CertPair, host: str
) -> None:
    srv = server_factory(host, **tls_settings(tls_cert, implicit_ssl=True))
    ftp = connect_tls(srv, implicit=True, login=False, timeout=TIMEOUT)
    try:
        features = feat_lines(ftp)
        auth = send_line(ftp, "AUTH TLS")
    finally:
        ftp.close()

    assert {"PBSZ", "PROT"} <= features, features
    assert not any(line.startswith("AUTH") for line in features), features
    assert auth.startswith("503"), auth


# -- AUTH, PBSZ, PROT, CCC, REIN -------------------------------------------------------------


@pytest.mark.parametrize("verb", ["PBSZ 0", "PROT P", "PROT C"])
def test_pbsz_and_prot_before_auth_reply_503(tls_server: Server, verb: str) -> None:
    ftp = plain(tls_server)
    try:
        reply = send_line(ftp, verb)
    finally:
        ftp.close()

    assert reply.startswith("503 "), reply
    assert "AUTH TLS" in reply, reply


def test_second_auth_replies_503_and_the_session_stays_encrypted(
    tls_login: ReusingFTP_TLS,
) -> None:
    again = send_line(tls_login, "AUTH TLS")
    alias = send_line(tls_login, "AUTH SSL")
    status = send_line(tls_login, "STAT")

    assert again.startswith("503"), again
    assert alias.startswith("503"), alias
    assert "Control connection is TLS" in status, status


def test_auth_with_an_unknown_mechanism_replies_504(tls_server: Server) -> None:
    ftp = plain(tls_server)
    try:
        unknown = send_line(ftp, "AUTH XYZ")
        # Nothing was started: the connection still speaks plain FTP.
        noop = send_line(ftp, "NOOP")
    finally:
        ftp.close()

    assert unknown.startswith("504"), unknown
    assert noop.startswith("200"), noop


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


def test_ccc_is_refused_with_533(tls_login: ReusingFTP_TLS) -> None:
    refused = send_line(tls_login, "CCC")
    # The control connection is still TLS: a command over it is answered.
    noop = send_line(tls_login, "NOOP")

    assert refused.startswith("533"), refused
    assert noop.startswith("200"), noop
    assert isinstance(tls_login.sock, ssl.SSLSocket)
    assert tls_login.sock.version()


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


def test_prot_without_pbsz_replies_503(tls_server: Server) -> None:
    ftp = connect_tls(tls_server, login=False, timeout=TIMEOUT)
    try:
        # RFC 4217 §9: PBSZ comes before PROT.
        early = send_line(ftp, "PROT P")
        pbsz = send_line(ftp, "PBSZ 0")
        after = send_line(ftp, "PROT P")
    finally:
        ftp.close()

    assert early.startswith("503"), early
    assert pbsz.startswith("200"), pbsz
    assert after.startswith("200"), after
