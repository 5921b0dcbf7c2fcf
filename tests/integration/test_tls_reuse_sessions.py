"""require_ssl_reuse against sessions issued elsewhere, on real instances: to another address,
to an earlier control connection the client resumes, to a closed control connection of the same
user, and a client that never resumes when require_ssl_reuse is false.
"""

from __future__ import annotations

import ftplib
import io
import re
import ssl
from collections.abc import Callable

import pytest

from tests.integration.ftps import (
    CertPair,
    ReusingFTP_TLS,
    client_context,
    connect_tls,
    control_session,
    tls_download,
    tls_payload,
    tls_settings,
    wrap_data,
)
from tests.integration.raw_ftp import open_data, recv_all
from tests.integration.servers import HOSTS, Server, wait_for_log
from tests.integration.tls_reuse import REUSE_LOG, VERSIONS, final_reply, passive_mode

TIMEOUT = 10
ServerFactory = Callable[..., Server]


def connect_from(srv: Server, source: str, ctx: ssl.SSLContext) -> ReusingFTP_TLS:
    """A resuming FTPS client whose control and data connections come from `source`."""
    ftp = ReusingFTP_TLS(context=ctx, timeout=TIMEOUT, source_address=(source, 0))
    try:
        ftp.connect(srv.host, srv.port)
        ftp.auth()
        ftp.login(srv.user, srv.password)
        ftp.prot_p()
    except BaseException:
        ftp.close()
        raise
    return ftp


@pytest.mark.parametrize("version", VERSIONS)
def test_session_issued_to_another_address_is_refused(
    server_factory: ServerFactory, tls_cert: CertPair, version: str
) -> None:
    # Loopback is 127.0.0.0/8: the same user from 127.0.0.1 and from 127.0.0.2. B's data
    # connection comes from B's own address, so the address check passes and the session
    # check alone must refuse it.
    _, keys = VERSIONS[version]
    srv = server_factory("127.0.0.1", **tls_settings(tls_cert, **keys))
    srv.home.joinpath("here.bin").write_bytes(b"for 127.0.0.1")
    ctx = client_context()
    a = connect_from(srv, "127.0.0.1", ctx)
    b = connect_from(srv, "127.0.0.2", ctx)
    b.session_source = a
    try:
        chunks: list[bytes] = []
        try:
            b.retrbinary("RETR here.bin", chunks.append)
            stolen = "226 (accepted)"
        except ftplib.Error as exc:
            stolen = str(exc)
        except (OSError, ssl.SSLError):
            stolen = final_reply(b)
        b.session_source = None
        own: list[bytes] = []
        own_reply = b.retrbinary("RETR here.bin", own.append)
    finally:
        a.close()
        b.close()
    logs = wait_for_log(srv, REUSE_LOG)

    assert stolen.startswith("522 "), stolen
    assert chunks == []
    assert re.search(
        r"TLS data connection from 127\.0\.0\.2 \(control connection #\d+, user alice\) "
        r"resumed the session of control connection #\d+ from another address "
        r"\(127\.0\.0\.1\); refused",
        logs,
    ), logs[-2000:]
    # The same client, resuming its own session, is served.
    assert own_reply.startswith("226")
    assert b"".join(own) == b"for 127.0.0.1"


class ControlResumingFTP_TLS(ReusingFTP_TLS):  # noqa: N801 (named after ftplib.FTP_TLS)
    """Resumes `offered` on the control connection itself, as a client reconnecting does."""

    offered: ssl.SSLSession | None = None

    def auth(self) -> str:
        answer = self.voidcmd("AUTH TLS")
        assert self.sock is not None  # connected: voidcmd answered
        self.sock = self.context.wrap_socket(
            self.sock, server_hostname=self.host, session=self.offered
        )
        self.file = self.sock.makefile(mode="r", encoding=self.encoding)
        return answer


@pytest.mark.parametrize("scope", ["user", "connection"])
def test_control_connection_resuming_an_earlier_session_keeps_its_data_connections(
    server_factory: ServerFactory, tls_cert: CertPair, scope: str
) -> None:
    # Over TLS 1.2 a reconnecting client resumes its earlier session on the new control
    # connection, which keeps that session's id; its data connections resume it in turn.
    srv = server_factory(
        "127.0.0.1", **tls_settings(tls_cert, ssl_tlsv1_3=False, ssl_reuse_scope=scope)
    )
    srv.home.joinpath("again.bin").write_bytes(b"after a reconnect")
    ctx = client_context()
    first = connect_tls(srv, context=ctx, timeout=TIMEOUT)
    earlier = control_session(first)
    first.quit()
    ftp = ControlResumingFTP_TLS(context=ctx, timeout=TIMEOUT)
    ftp.offered = earlier
    try:
        ftp.connect(srv.host, srv.port)
        ftp.auth()
        assert isinstance(ftp.sock, ssl.SSLSocket)
        control_resumed = ftp.sock.session_reused
        ftp.login(srv.user, srv.password)
        ftp.prot_p()
        got, reply, resumed = tls_download(ftp, "PASV", "RETR again.bin")
    finally:
        ftp.close()

    assert control_resumed
    assert reply.startswith("226"), reply
    assert resumed
    assert got == b"after a reconnect"


def test_session_of_a_closed_control_connection_of_the_same_user_is_accepted(
    tls_server: Server,
) -> None:
    # rclone closes surplus control connections, and the newest session in its cache may be
    # one of theirs.
    tls_server.home.joinpath("later.bin").write_bytes(b"still alice's")
    ctx = client_context()
    a = connect_tls(tls_server, context=ctx, timeout=TIMEOUT)
    session = control_session(a)
    a.quit()
    b = connect_tls(tls_server, context=ctx, timeout=TIMEOUT)
    try:
        conn, _ = open_data(b, passive_mode(tls_server), "RETR later.bin")
        with wrap_data(b, conn, session=session) as tls:
            resumed = tls.session_reused
            got = recv_all(tls, timeout=TIMEOUT)
        reply = final_reply(b)
    finally:
        b.close()

    assert reply.startswith("226"), reply
    assert resumed
    assert got == b"still alice's"


@pytest.mark.parametrize("host", HOSTS)
def test_non_resuming_client_works_when_require_ssl_reuse_is_false(
    server_factory: ServerFactory, tls_cert: CertPair, host: str
) -> None:
    srv = server_factory(host, **tls_settings(tls_cert, require_ssl_reuse=False))
    data = tls_payload(100_000, seed=21)
    ftp = ftplib.FTP_TLS(context=client_context(), timeout=TIMEOUT)  # stock: never resumes
    try:
        ftp.connect(srv.host, srv.port)
        ftp.login(srv.user, srv.password)
        ftp.prot_p()
        stored = ftp.storbinary("STOR plainftplib.bin", io.BytesIO(data))
        chunks: list[bytes] = []
        fetched = ftp.retrbinary("RETR plainftplib.bin", chunks.append)
    finally:
        ftp.close()

    assert stored.startswith("226")
    assert fetched.startswith("226")
    assert b"".join(chunks) == data
    assert REUSE_LOG not in srv.log_text()
