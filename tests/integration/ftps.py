"""FTPS (RFC 4217) for the integration tests: certificates, settings and clients.

A self-signed certificate per test session (never committed), instances that serve FTPS as
the shipped ones do, and ftplib clients that resume the control connection's TLS session on
their data connections, as FileZilla, WinSCP, curl and lftp do (ftplib alone does not).
"""

from __future__ import annotations

import ftplib
import hashlib
import random
import socket
import ssl
from pathlib import Path
from typing import Any

import attrs

from tests.integration.raw_ftp import open_data, recv_all
from tests.integration.servers import Server

# -- FTPS (RFC 4217) ----------------------------------------------------------------------
# A self-signed certificate per test session (never committed), instances that serve FTPS as
# the shipped ones do, and ftplib clients that resume the control connection's TLS session on
# their data connections, as FileZilla, WinSCP, curl and lftp do (ftplib alone does not).


@attrs.frozen
class CertPair:
    """A certificate file and its private key file."""

    cert: Path
    key: Path


def write_cert_pair(
    directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"), *, days: int = 825
) -> CertPair:
    """A fresh self-signed certificate and key in `directory`, made by ftpsup itself."""
    from ftpsup.tls.certs import write_self_signed

    pair = CertPair(directory / "cert.pem", directory / "key.pem")
    write_self_signed(pair.cert, pair.key, names, days=days)
    return pair


def tls_settings(pair: CertPair, **overrides: Any) -> dict[str, Any]:
    """Instance keys for explicit FTPS as the shipped instances serve it: forced, TLS 1.2+."""
    settings: dict[str, Any] = {
        "ssl_enable": True,
        "force_local_logins_ssl": True,
        "force_local_data_ssl": True,
        "ssl_tlsv1_2": True,
        "ssl_tlsv1_3": True,
        "ssl_ciphers": "HIGH",
        "rsa_cert_file": str(pair.cert),
        "rsa_private_key_file": str(pair.key),
    }
    settings.update(overrides)
    return settings


def client_context(
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    """A client context that accepts the test's self-signed certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = minimum
    ctx.maximum_version = maximum
    return ctx


class ReusingFTP_TLS(ftplib.FTP_TLS):  # noqa: N801 (named after ftplib.FTP_TLS)
    """FTP_TLS whose data connections resume the control connection's TLS session.

    `session_source`, when set, is another control connection whose session is presented
    instead (to prove the server refuses a session that is not this connection's own).
    """

    session_source: ftplib.FTP_TLS | None = None

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            source = self.session_source or self
            assert isinstance(source.sock, ssl.SSLSocket)
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=source.sock.session
            )
        return conn, size


class ImplicitFTP_TLS(ReusingFTP_TLS):  # noqa: N801
    """Implicit FTPS: TLS from the first byte, before the greeting (no AUTH)."""

    def connect(
        self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None
    ) -> str:
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        plain = socket.create_connection((self.host, self.port), self.timeout)
        self.af = plain.family
        self.sock = self.context.wrap_socket(plain, server_hostname=self.host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def connect_tls(
    srv: Server,
    *,
    implicit: bool = False,
    context: ssl.SSLContext | None = None,
    login: bool = True,
    prot_p: bool = True,
    timeout: float = 10,
) -> ReusingFTP_TLS:
    """A resuming FTPS client on `srv`: AUTH TLS (or implicit TLS), login, PBSZ 0, PROT P."""
    cls = ImplicitFTP_TLS if implicit else ReusingFTP_TLS
    ftp = cls(context=context or client_context(), timeout=timeout)
    try:
        ftp.connect(srv.host, srv.port)
        if not implicit:
            ftp.auth()
        if login:
            ftp.login(srv.user, srv.password)
            if prot_p:
                ftp.prot_p()
    except BaseException:
        ftp.close()
        raise
    return ftp


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tls_payload(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes with CR, LF and NUL up front: any conversion changes the sha256."""
    return (b"line\r\nnext\nlast\r\x00" + random.Random(size * 1000 + seed).randbytes(size))[:size]


def wrap_data(
    ftp: ftplib.FTP_TLS, conn: socket.socket, *, session: ssl.SSLSession | None
) -> ssl.SSLSocket:
    """Make a data socket opened by `open_data` TLS, resuming `session` (None: a full handshake)."""
    return ftp.context.wrap_socket(conn, server_hostname=ftp.host, session=session)


def control_session(ftp: ftplib.FTP) -> ssl.SSLSession | None:
    assert isinstance(ftp.sock, ssl.SSLSocket)
    return ftp.sock.session


def tls_download(ftp: ReusingFTP_TLS, mode: str, command: str) -> tuple[bytes, str, bool]:
    """Read what `command` sends on a resumed TLS data connection in `mode`.

    Returns:
        The bytes, the final reply, and whether the data connection resumed the session.
    """
    conn, _ = open_data(ftp, mode, command)
    with wrap_data(ftp, conn, session=control_session(ftp)) as tls:
        resumed = bool(tls.session_reused)
        data = recv_all(tls)
        tls.unwrap()
    return data, ftp.voidresp(), resumed


def tls_upload(ftp: ReusingFTP_TLS, mode: str, command: str, data: bytes) -> tuple[str, bool]:
    """Send `data` for `command` on a resumed TLS data connection, ending with close_notify."""
    conn, _ = open_data(ftp, mode, command)
    with wrap_data(ftp, conn, session=control_session(ftp)) as tls:
        resumed = bool(tls.session_reused)
        tls.sendall(data)
        tls.unwrap()
    return ftp.voidresp(), resumed
