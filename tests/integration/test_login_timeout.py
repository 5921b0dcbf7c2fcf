"""login_timeout on real instances: a connection that never logs in gets 421, commands without a
login do not hold the clock back, a login stops it and REIN starts it again, over plain FTP,
explicit FTPS and implicit FTPS.

Every wait is for something the server does (a reply, a close, a log line), with a deadline;
the login timeout is set to 1 s so those waits are short.
"""

from __future__ import annotations

import ftplib
import select
import socket
import ssl
import time
from collections.abc import Callable

import pytest

from tests.integration.ftps import (
    CertPair,
    connect_tls,
    tls_settings,
)
from tests.integration.raw_ftp import RawControl, read_until_closed
from tests.integration.servers import HOSTS, Server, wait_for_log

ServerFactory = Callable[..., Server]


TIMEOUT = 10
LOGIN_TIMEOUT = 1
LOGIN_TIMEOUT_LINE = f"421 Login timeout ({LOGIN_TIMEOUT} seconds): closing control connection."


# -- login_timeout ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_a_connection_that_never_logs_in_gets_421_after_login_timeout(
    server_factory: ServerFactory, host: str
) -> None:
    # When the clock fires (at login_timeout from accept, not before) is tested under trio's
    # MockClock in tests/server/test_login_timeout.py; here, the real instance's reply, close
    # and log line, waited for with a deadline.
    srv = server_factory(host, login_timeout=LOGIN_TIMEOUT, idle_session_timeout=60)
    with RawControl(srv.host, srv.port, timeout=TIMEOUT) as ctl:
        assert ctl.reply().code == 220
        rest = read_until_closed(ctl.sock)
    assert rest.decode() == LOGIN_TIMEOUT_LINE + "\r\n"
    logs = wait_for_log(srv, "within login_timeout")
    assert f"no login from {host} within login_timeout ({LOGIN_TIMEOUT} s); closing" in logs


def test_commands_without_a_login_do_not_hold_the_clock_back(server_factory: ServerFactory) -> None:
    # The idle timeout restarts with every command; the login timeout does not. The 421
    # comes while commands keep coming (timed under a mock clock in test_login_timeout.py).
    srv = server_factory("127.0.0.1", login_timeout=LOGIN_TIMEOUT, idle_session_timeout=60)
    began = time.monotonic()
    with RawControl(srv.host, srv.port, timeout=TIMEOUT) as ctl:
        assert ctl.reply().code == 220
        assert ctl.command("USER alice").code == 331
        last = None
        for _ in range(100_000):  # bounded in count as well as by the deadline
            assert time.monotonic() - began < TIMEOUT, "no 421 while busy"
            last = ctl.command("NOOP")
            if last.code != 200:
                break
            # A short wait for the server to speak first, not a pace.
            select.select([ctl.sock], [], [], 0.05)
        assert last is not None
        assert (last.code, last.text) == (421, LOGIN_TIMEOUT_LINE[4:])
        assert ctl.is_closed()


def test_a_logged_in_session_outlives_the_login_timeout(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1", login_timeout=LOGIN_TIMEOUT, idle_session_timeout=60)
    with srv.connect(timeout=TIMEOUT) as logged_in:
        # A connection opened after the login, cut by the login timeout: by then the
        # logged-in session has been idle for longer than login_timeout.
        with RawControl(srv.host, srv.port, timeout=TIMEOUT) as latecomer:
            assert latecomer.reply().code == 220
            assert read_until_closed(latecomer.sock).startswith(b"421 Login timeout")
        assert logged_in.voidcmd("NOOP").startswith("200")
        assert logged_in.pwd() == "/"


def test_rein_starts_the_login_clock_again(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1", login_timeout=LOGIN_TIMEOUT, idle_session_timeout=60)
    with RawControl(srv.host, srv.port, timeout=TIMEOUT) as ctl:
        assert ctl.reply().code == 220
        assert ctl.login().code == 230
        # Logged in: a whole login timeout goes by (seen on a second connection) unharmed.
        with RawControl(srv.host, srv.port, timeout=TIMEOUT) as other:
            assert other.reply().code == 220
            assert read_until_closed(other.sock).startswith(b"421 Login timeout")
        assert ctl.command("NOOP").code == 200
        assert ctl.command("REIN").code == 220
        # From the REIN, not from the connect (long past): test_login_timeout.py, mock clock.
        assert read_until_closed(ctl.sock).decode() == LOGIN_TIMEOUT_LINE + "\r\n"


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_explicit_ftps_without_a_login_gets_421_over_tls(
    server_factory: ServerFactory, tls_cert: CertPair, host: str
) -> None:
    srv = server_factory(host, **tls_settings(tls_cert, login_timeout=LOGIN_TIMEOUT))
    ftp = connect_tls(srv, login=False, timeout=TIMEOUT)
    try:
        assert isinstance(ftp.sock, ssl.SSLSocket)
        with pytest.raises(ftplib.error_temp, match="^421 Login timeout"):
            ftp.getresp()
    finally:
        ftp.close()


def test_the_login_clock_covers_the_implicit_tls_handshake(
    server_factory: ServerFactory, tls_cert: CertPair
) -> None:
    # A client that never starts its handshake is gone after login_timeout, long before
    # tls_handshake_timeout, and is sent nothing in clear text. The log line says which clock
    # fired; the timing is tests/server/test_tls_handshake_timeout.py's (trio's MockClock).
    srv = server_factory(
        "127.0.0.1",
        **tls_settings(
            tls_cert, implicit_ssl=True, login_timeout=LOGIN_TIMEOUT, tls_handshake_timeout=60
        ),
    )
    with socket.create_connection((srv.host, srv.port), TIMEOUT) as sock:
        assert read_until_closed(sock) == b""
    assert "no login from 127.0.0.1 within login_timeout" in wait_for_log(srv, "login_timeout")
