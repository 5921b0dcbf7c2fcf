"""Bad TLS input and certificate renewal on a real instance.

Rules:
- Each bad input (a truncated handshake, plain text after AUTH TLS, a client that vanishes
  mid-handshake, garbage on the implicit port, a handshake that never completes) must end
  that connection only, with a log line: a session opened before it keeps working, and a fresh
  client then logs in and transfers.
- A renewed certificate is served to new connections without a restart, while a session
  opened before the renewal keeps its own and still transfers.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.ftps import (
    CertPair,
    ReusingFTP_TLS,
    client_context,
    connect_tls,
    sha256_hex,
    tls_payload,
    tls_settings,
    write_cert_pair,
)
from tests.integration.raw_ftp import RawControl, read_until_closed
from tests.integration.servers import HOSTS, Server, start_server, wait_until

TIMEOUT = 10
HANDSHAKE_TIMEOUT = 2
FAILED = re.compile(r"TLS handshake with (\S+) failed: (.*)")
ServerFactory = Callable[..., Server]


def client_hello() -> bytes:
    """A real TLS ClientHello, as the first flight of a handshake."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def failures(srv: Server) -> list[tuple[str, str]]:
    return FAILED.findall(srv.log_text())


def wait_for_new_failure(srv: Server, before: int) -> tuple[str, str]:
    """The next 'TLS handshake ... failed' line after the first `before` (bounded wait)."""
    wait_until(lambda: len(failures(srv)) > before, "a new TLS handshake failure", timeout=TIMEOUT)
    return failures(srv)[before]


def after_auth_tls(srv: Server) -> RawControl:
    ctl = RawControl(srv.host, srv.port, timeout=TIMEOUT)
    assert ctl.reply().code == 220
    assert ctl.command("AUTH TLS").code == 234
    return ctl


def assert_serving(srv: Server, survivor: ReusingFTP_TLS, *, implicit: bool = False) -> None:
    """The session opened before the fault still works, and a new client logs in and stores."""
    data = tls_payload(30_000, seed=60)
    assert survivor.voidcmd("NOOP").startswith("200")
    assert survivor.storbinary("STOR survivor.bin", io.BytesIO(data)).startswith("226")
    fresh = connect_tls(srv, implicit=implicit, timeout=TIMEOUT)
    try:
        assert fresh.storbinary("STOR fresh.bin", io.BytesIO(data[::-1])).startswith("226")
    finally:
        fresh.close()
    assert (srv.home / "survivor.bin").read_bytes() == data
    assert (srv.home / "fresh.bin").read_bytes() == data[::-1]


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def explicit(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_cert: CertPair
) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("faults"),
        request.param,
        **tls_settings(tls_cert, tls_handshake_timeout=HANDSHAKE_TIMEOUT),
    )
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def implicit(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_cert: CertPair
) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("faults_implicit"),
        request.param,
        **tls_settings(tls_cert, implicit_ssl=True, tls_handshake_timeout=HANDSHAKE_TIMEOUT),
    )
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture
def survivor(explicit: Server) -> Iterator[ReusingFTP_TLS]:
    client = connect_tls(explicit, timeout=TIMEOUT)
    yield client
    client.close()


# -- bad input on the explicit port -------------------------------------------------------


def test_truncated_handshake_ends_that_connection_only(
    explicit: Server, survivor: ReusingFTP_TLS
) -> None:
    before = len(failures(explicit))
    hello = client_hello()
    with after_auth_tls(explicit) as ctl:
        ctl.send(hello[: len(hello) // 2])
        ctl.sock.shutdown(socket.SHUT_WR)  # then the client is gone
        answer = read_until_closed(ctl.sock)

    peer, reason = wait_for_new_failure(explicit, before)
    assert peer == explicit.host
    assert reason
    assert b"220" not in answer
    assert_serving(explicit, survivor)


def test_plain_text_after_auth_tls_ends_that_connection_only(
    explicit: Server, survivor: ReusingFTP_TLS
) -> None:
    before = len(failures(explicit))
    with after_auth_tls(explicit) as ctl:
        ctl.send(f"USER {explicit.user}\r\n".encode())
        answer = read_until_closed(ctl.sock)

    # Never read as a command: no 331, and the handshake failure is logged.
    assert b"331" not in answer, answer
    assert b"530" not in answer, answer
    peer, reason = wait_for_new_failure(explicit, before)
    assert peer == explicit.host
    assert reason
    assert_serving(explicit, survivor)


def test_client_vanishing_mid_handshake_ends_that_connection_only(
    explicit: Server, survivor: ReusingFTP_TLS
) -> None:
    before = len(failures(explicit))
    with after_auth_tls(explicit) as ctl:
        ctl.send(client_hello())
        ctl.sock.settimeout(TIMEOUT)
        assert ctl.sock.recv(5)[:1] == b"\x16"  # the ServerHello's record has begun
        # Gone with an RST: SO_LINGER 0 makes close() abort the connection.
        ctl.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    peer, reason = wait_for_new_failure(explicit, before)
    assert peer == explicit.host
    assert reason
    assert_serving(explicit, survivor)


@pytest.mark.parametrize("sent", ["nothing", "half_hello"])
def test_handshake_that_never_completes_times_out(
    explicit: Server, survivor: ReusingFTP_TLS, sent: str
) -> None:
    # Waits, with a deadline, for the server to close; no duration is asserted. For a client
    # that never starts, the timing (at tls_handshake_timeout, not before) is tested under
    # trio's MockClock in tests/server/test_tls_handshake_timeout.py. A stalled half hello
    # waits on a socket timeout in the handshake's thread (the kernel's clock, beyond a mock
    # clock): here, that it ends, and the log line's reason says it timed out.
    before = len(failures(explicit))
    with after_auth_tls(explicit) as ctl:
        if sent == "half_hello":
            hello = client_hello()
            ctl.send(hello[: len(hello) // 2])  # and then the client stalls, connection open
        read_until_closed(ctl.sock, timeout=HANDSHAKE_TIMEOUT + 8)

    peer, reason = wait_for_new_failure(explicit, before)
    assert peer == explicit.host
    assert "timed out" in reason or "tls_handshake_timeout" in reason, reason
    assert_serving(explicit, survivor)


# -- bad input on the implicit port -------------------------------------------------------


@pytest.mark.parametrize("garbage", ["random", "http"])
def test_garbage_instead_of_a_client_hello_on_the_implicit_port(
    implicit: Server, garbage: str
) -> None:
    survivor = connect_tls(implicit, implicit=True, timeout=TIMEOUT)
    try:
        before = len(failures(implicit))
        payload = (
            random.Random(61).randbytes(1000)
            if garbage == "random"
            else b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        with socket.create_connection((implicit.host, implicit.port), timeout=TIMEOUT) as raw:
            raw.sendall(payload)
            answer = read_until_closed(raw)

        assert not answer.startswith(b"220")
        peer, reason = wait_for_new_failure(implicit, before)
        assert peer == implicit.host
        assert reason
        assert_serving(implicit, survivor, implicit=True)
    finally:
        survivor.close()


def test_silent_client_on_the_implicit_port_is_dropped_after_the_handshake_timeout(
    implicit: Server,
) -> None:
    # The timing (closed at tls_handshake_timeout, not before) is tested under trio's
    # MockClock in tests/server/test_tls_handshake_timeout.py; here, the real instance's
    # closing and its log line.
    before = len(failures(implicit))
    with socket.create_connection((implicit.host, implicit.port), timeout=TIMEOUT) as raw:
        answer = read_until_closed(raw, timeout=HANDSHAKE_TIMEOUT + 8)

    assert answer == b""  # no plain-text greeting, ever
    _, reason = wait_for_new_failure(implicit, before)
    assert "tls_handshake_timeout" in reason


# -- certificate renewal ------------------------------------------------------------------


def der_of(pem_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_file.read_text())


def renew(pair: CertPair, scratch: Path) -> None:
    """Replace the certificate and key files the way certbot's renewal does: new files, renamed."""
    scratch.mkdir()
    new = write_cert_pair(scratch)
    os.replace(new.key, pair.key)
    os.replace(new.cert, pair.cert)


@pytest.mark.parametrize("host", HOSTS)
def test_renewed_certificate_reaches_new_sessions_without_dropping_old_ones(
    server_factory: ServerFactory, tmp_path: Path, host: str
) -> None:
    (tmp_path / "live").mkdir()
    pair = write_cert_pair(tmp_path / "live")
    srv = server_factory(host, **tls_settings(pair))
    data = tls_payload(400_000, seed=62)
    old = connect_tls(srv, timeout=TIMEOUT)
    try:
        assert isinstance(old.sock, ssl.SSLSocket)
        old_cert = old.sock.getpeercert(binary_form=True)
        assert old_cert == der_of(pair.cert)

        renew(pair, tmp_path / "renewed")
        # What `ftpsup reload` and a certbot deploy hook send; the instance must not restart.
        srv.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "log files reopened" in srv.log_text(), "the logs reopened on SIGHUP")
        new = connect_tls(srv, timeout=TIMEOUT)
        try:
            assert isinstance(new.sock, ssl.SSLSocket)
            new_cert = new.sock.getpeercert(binary_form=True)
            assert new.storbinary("STOR new.bin", io.BytesIO(data)).startswith("226")
        finally:
            new.close()

        # The session from before the renewal still transfers, on its own TLS session.
        stored = old.storbinary("STOR old.bin", io.BytesIO(data))
        chunks: list[bytes] = []
        fetched = old.retrbinary("RETR new.bin", chunks.append)
    finally:
        old.close()

    assert new_cert != old_cert
    assert new_cert == der_of(pair.cert)
    assert stored.startswith("226")
    assert fetched.startswith("226")
    assert sha256_hex(b"".join(chunks)) == sha256_hex(data)
    assert (srv.home / "old.bin").read_bytes() == data
    assert srv.process.poll() is None


@pytest.mark.parametrize("host", HOSTS)
def test_certificate_expiring_soon_is_reported_but_still_served(
    server_factory: ServerFactory, tmp_path: Path, host: str
) -> None:
    # A failed renewal must show up in `ftpsup check`, never as an instance that will not start
    # (or restart) while its certificate still works.
    (tmp_path / "soon").mkdir()
    pair = write_cert_pair(tmp_path / "soon", days=10)
    srv = server_factory(host, **tls_settings(pair))
    ftp = connect_tls(srv, timeout=TIMEOUT)
    try:
        stored = ftp.storbinary("STOR soon.bin", io.BytesIO(b"still valid"))
    finally:
        ftp.close()
    check = subprocess.run(
        [sys.executable, "-m", "ftpsup", "check", str(srv.config_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert stored.startswith("226"), stored
    # Still valid: a warning, which stops neither check nor start.
    assert check.returncode == 0, check.stderr
    assert f"rsa_cert_file: warning: {pair.cert} expires on " in check.stderr
    assert "in under 14 days" in check.stderr
