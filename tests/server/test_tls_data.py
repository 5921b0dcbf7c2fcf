"""TlsDataConnection over a socket pair, against a stdlib TLS client in a thread."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ftpsup.server.tls_data import WIRE_CHUNK, TlsDataConnection
from ftpsup.tls.certs import write_self_signed

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("tls")
    cert, key = base / "test-cert.pem", base / "test-key.pem"
    write_self_signed(cert, key, ["localhost"])
    return cert, key


def _server_context(
    cert_files: tuple[Path, Path], *, ignore_eof: bool | None = None
) -> ssl.SSLContext:
    """A server context; OP_IGNORE_UNEXPECTED_EOF as the interpreter sets it unless given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(*cert_files)
    ctx.num_tickets = 0
    if ignore_eof is True:
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    elif ignore_eof is False:
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


@pytest.fixture(scope="module")
def server_context(cert_files: tuple[Path, Path]) -> ssl.SSLContext:
    return _server_context(cert_files)


def _client_context(version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = version
    return ctx


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.settimeout(TIMEOUT)
    client.settimeout(TIMEOUT)
    with server, client:
        yield server, client


@contextlib.contextmanager
def _tls_client(
    client: socket.socket,
    work: Callable[[ssl.SSLSocket], None],
    version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> Iterator[None]:
    """Run `work` on a TLS client over `client` in a thread; its errors fail the test."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            tls = _client_context(version).wrap_socket(client, server_hostname="localhost")
            work(tls)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    yield
    thread.join(TIMEOUT)
    assert not errors


def _read_all(conn: TlsDataConnection) -> bytes:
    received = bytearray()
    buffer = bytearray(1024 * 1024)
    for _ in range(10_000):
        count = conn.recv_into(buffer)
        if count == 0:
            return bytes(received)
        received += buffer[:count]
    raise AssertionError("no end of data after 10 000 reads")


def test_an_upload_with_close_notify_arrives_whole_and_reads_end_with_zero(
    server_context: ssl.SSLContext, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    payload = os.urandom(3 * WIRE_CHUNK + 12345)

    def upload(tls: ssl.SSLSocket) -> None:
        tls.sendall(payload)
        tls.unwrap()

    with _tls_client(client, upload):
        conn = TlsDataConnection.accept(server_context, server, TIMEOUT)
        assert _read_all(conn) == payload
        conn.unwrap()


def test_one_read_gathers_several_records_when_they_are_at_hand(
    server_context: ssl.SSLContext, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    accepted = threading.Event()
    sent = threading.Event()

    def upload(tls: ssl.SSLSocket) -> None:
        # After the server's handshake is done: otherwise its last handshake read may take
        # the first record alone, and that record is what the first read returns.
        assert accepted.wait(TIMEOUT)
        for _ in range(4):
            tls.sendall(b"x" * 16384)  # four full records
        sent.set()
        tls.unwrap()

    with _tls_client(client, upload):
        conn = TlsDataConnection.accept(server_context, server, TIMEOUT)
        accepted.set()
        assert sent.wait(TIMEOUT)
        buffer = bytearray(1024 * 1024)
        assert conn.recv_into(buffer) == 4 * 16384
        assert conn.recv_into(buffer) == 0
        conn.unwrap()


def test_end_of_file_without_close_notify_is_an_eof_error(
    server_context: ssl.SSLContext, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair

    def truncated(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"part of an upload")
        # Close the TCP connection under TLS: no close_notify.
        socket.socket.shutdown(tls, socket.SHUT_WR)

    with _tls_client(client, truncated):
        conn = TlsDataConnection.accept(server_context, server, TIMEOUT)
        buffer = bytearray(65536)
        assert conn.recv_into(buffer) == len(b"part of an upload")
        with pytest.raises(ssl.SSLEOFError):
            conn.recv_into(buffer)


VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("ignore_eof", [False, True], ids=["eof-error", "eof-ignored"])
def test_only_close_notify_reads_as_the_end_whatever_the_context_says(
    cert_files: tuple[Path, Path],
    pair: tuple[socket.socket, socket.socket],
    ignore_eof: bool,
    version: ssl.TLSVersion,
) -> None:
    # CPython up to 3.11.2 (Debian 12) sets OP_IGNORE_UNEXPECTED_EOF on every new context,
    # and strict_ssl_read_eof = false sets it on purpose: the truth is told either way.
    ctx = _server_context(cert_files, ignore_eof=ignore_eof)
    server, client = pair

    def truncated(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"part of an upload")
        socket.socket.shutdown(tls, socket.SHUT_WR)

    with _tls_client(client, truncated, version):
        conn = TlsDataConnection.accept(ctx, server, TIMEOUT)
        buffer = bytearray(65536)
        assert conn.recv_into(buffer) == len(b"part of an upload")
        with pytest.raises(ssl.SSLEOFError):
            conn.recv_into(buffer)
        with pytest.raises(ssl.SSLEOFError):
            conn.recv_into(buffer)


@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("ignore_eof", [False, True], ids=["eof-error", "eof-ignored"])
def test_close_notify_then_end_of_file_reads_as_the_end(
    cert_files: tuple[Path, Path],
    pair: tuple[socket.socket, socket.socket],
    ignore_eof: bool,
    version: ssl.TLSVersion,
) -> None:
    ctx = _server_context(cert_files, ignore_eof=ignore_eof)
    server, client = pair

    def whole(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"a whole upload")
        plain = tls.unwrap()
        plain.shutdown(socket.SHUT_WR)

    with _tls_client(client, whole, version):
        conn = TlsDataConnection.accept(ctx, server, TIMEOUT)
        assert _read_all(conn) == b"a whole upload"
        assert conn.recv_into(bytearray(16)) == 0
        conn.unwrap()


def test_a_download_is_sent_in_wire_chunks_and_read_back_exactly(
    server_context: ssl.SSLContext, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    payload = os.urandom(2 * WIRE_CHUNK + 999)
    received = bytearray()

    def download(tls: ssl.SSLSocket) -> None:
        while chunk := tls.recv(65536):
            received.extend(chunk)
        tls.unwrap()

    with _tls_client(client, download):
        conn = TlsDataConnection.accept(server_context, server, TIMEOUT)
        view = memoryview(payload)
        while view:
            sent = conn.send(view)
            assert 0 < sent <= WIRE_CHUNK
            view = view[sent:]
        conn.unwrap()
    assert bytes(received) == payload


def test_a_client_that_hangs_up_during_the_handshake_fails_it(
    server_context: ssl.SSLContext, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    client.sendall(b"\x16\x03\x01\x00")  # the start of a ClientHello, then nothing
    client.shutdown(socket.SHUT_WR)
    with pytest.raises((ssl.SSLError, OSError)):
        TlsDataConnection.accept(server_context, server, TIMEOUT)


def test_a_silent_client_times_out_the_handshake(
    server_context: ssl.SSLContext, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, _client = pair
    with pytest.raises(TimeoutError):
        TlsDataConnection.accept(server_context, server, 0.2)
