"""Copy loops on real sockets: send_bytes_now, send_bytes, send_file and receive_file."""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import termios
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ftpsup.server.transfer import copying
from ftpsup.server.transfer.copying import (
    SEND_NOW_LIMIT,
    Progress,
    receive_file,
    send_bytes,
    send_bytes_now,
    send_cached_now,
    send_file,
)

TIMEOUT = 10.0


def _receive_all(sock: socket.socket, into: bytearray) -> None:
    while chunk := sock.recv(65536):
        into += chunk


def test_send_bytes_now_sends_a_small_payload_whole() -> None:
    sender, receiver = socket.socketpair()
    with sender, receiver:
        sender.setblocking(False)
        progress = Progress()
        assert send_bytes_now(sender, b"drwxr-xr-x 1 ftp ftp 0 Jan 1 2026 pub\r\n", progress)
        assert progress.bytes_done == 39
        sender.close()
        received = bytearray()
        _receive_all(receiver, received)
    assert bytes(received) == b"drwxr-xr-x 1 ftp ftp 0 Jan 1 2026 pub\r\n"


def test_send_bytes_finishes_what_a_full_socket_buffer_left_over() -> None:
    payload = bytes(range(256)) * (64 * 1024)  # 16 MiB: far more than a socket buffer holds
    sender, receiver = socket.socketpair()
    with sender, receiver:
        sender.setblocking(False)
        progress = Progress()
        assert not send_bytes_now(sender, payload, progress)
        assert 0 < progress.bytes_done < len(payload)
        received = bytearray()
        reader = threading.Thread(target=_receive_all, args=(receiver, received))
        reader.start()
        send_bytes(sender, payload, progress, timeout=10.0)
        sender.shutdown(socket.SHUT_WR)
        reader.join(timeout=10.0)
    assert progress.bytes_done == len(payload)
    assert bytes(received) == payload


def test_send_bytes_now_reports_a_connection_the_peer_closed() -> None:
    sender, receiver = socket.socketpair()
    receiver.close()
    sender.setblocking(False)
    with sender, pytest.raises(BrokenPipeError):
        send_bytes_now(sender, b"x" * 1024, Progress())


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on 127.0.0.1: (server side, client side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), TIMEOUT)
        server, _ = listener.accept()
    with server, client:
        yield server, client


def _send_then_close(sock: socket.socket, payload: bytes) -> Callable[[], None]:
    def body() -> None:
        sock.sendall(payload)
        sock.close()

    return body


def _upload(
    server: socket.socket,
    target: Path,
    client_side: Callable[[], None],
    *,
    flags: int = os.O_WRONLY | os.O_CREAT,
    ascii: bool = False,
    progress: Progress | None = None,
) -> None:
    """receive_file into `target` while `client_side` sends from a thread."""
    fd = os.open(target, flags, 0o600)
    sender = threading.Thread(target=client_side)
    sender.start()
    try:
        receive_file(server, fd, progress or Progress(), TIMEOUT, ascii=ascii)
    finally:
        os.close(fd)
        sender.join(TIMEOUT)


def test_a_binary_upload_is_written_exactly(
    tcp_pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    server, client = tcp_pair
    payload = os.urandom(5 * 1024 * 1024 + 7)
    target = tmp_path / "up.bin"
    progress = Progress()
    _upload(server, target, _send_then_close(client, payload), progress=progress)
    assert target.read_bytes() == payload
    assert progress.bytes_done == len(payload)


def test_an_append_upload_lands_after_the_existing_bytes(
    tcp_pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    # splice() refuses O_APPEND files: the copy goes on through a buffer, nothing is lost.
    server, client = tcp_pair
    target = tmp_path / "log.txt"
    target.write_bytes(b"first part\n")
    payload = os.urandom(3 * 1024 * 1024)
    _upload(server, target, _send_then_close(client, payload), flags=os.O_WRONLY | os.O_APPEND)
    assert target.read_bytes() == b"first part\n" + payload


def test_an_ascii_upload_turns_crlf_into_lf(
    tcp_pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    server, client = tcp_pair
    target = tmp_path / "a.txt"
    _upload(server, target, _send_then_close(client, b"one\r\ntwo\r\n" * 1000), ascii=True)
    assert target.read_bytes() == b"one\ntwo\n" * 1000


def test_a_silent_uploader_times_out(
    tcp_pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    # The data timeout is the kernel's (SO_RCVTIMEO), on the wall clock; the test waits for
    # its outcome, with a deadline, and asserts no duration.
    server, client = tcp_pair
    client.sendall(b"a little")
    fd = os.open(tmp_path / "stalled.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    outcome: list[BaseException | None] = []

    def receive() -> None:
        try:
            receive_file(server, fd, Progress(), 0.3, ascii=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)
        else:
            outcome.append(None)

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    receiver.join(TIMEOUT)
    try:
        assert not receiver.is_alive(), "the silent upload never timed out"
        assert isinstance(outcome[0], TimeoutError), outcome
    finally:
        client.close()  # ends a receive that ignored its timeout
        receiver.join(TIMEOUT)
        os.close(fd)
    # What arrived before the stall is on disk.
    assert (tmp_path / "stalled.bin").read_bytes() == b"a little"


def test_a_download_by_sendfile_arrives_exactly_from_the_offset(
    tcp_pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    server, client = tcp_pair
    payload = os.urandom(3 * 1024 * 1024 + 5)
    source = tmp_path / "down.bin"
    source.write_bytes(payload)
    received = bytearray()
    reader = threading.Thread(target=_receive_all, args=(client, received))
    reader.start()
    fd = os.open(source, os.O_RDONLY)
    progress = Progress()
    try:
        send_file(server, fd, 1000, progress, TIMEOUT)
        server.shutdown(socket.SHUT_WR)
    finally:
        os.close(fd)
    reader.join(TIMEOUT)
    assert bytes(received) == payload[1000:]
    assert progress.bytes_done == len(payload) - 1000


def test_a_small_cached_file_goes_out_without_a_thread(
    tcp_pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    server, client = tcp_pair
    payload = os.urandom(64 * 1024)
    source = tmp_path / "small.bin"
    source.write_bytes(payload)
    fd = os.open(source, os.O_RDONLY)
    server.setblocking(False)
    progress = Progress()
    try:
        os.pread(fd, len(payload), 0)  # in the page cache now
        assert send_cached_now(server, fd, 100, len(payload) - 100, progress)
        too_big = send_cached_now(server, fd, 0, SEND_NOW_LIMIT + 1, Progress())
    finally:
        os.close(fd)
    assert not too_big
    server.shutdown(socket.SHUT_WR)
    received = bytearray()
    _receive_all(client, received)
    assert bytes(received) == payload[100:]
    assert progress.bytes_done == len(payload) - 100


def _wait_until_acknowledged(sock: socket.socket) -> None:
    """Wait (polling, with a deadline) until the peer has ACKed all that `sock` sent.

    With TCP_NODELAY and nothing left unacknowledged, the next send leaves in a segment of its
    own: a send is never merged with what went before.
    """
    deadline = time.monotonic() + TIMEOUT
    while struct.unpack("@i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0" * 4))[0]:
        assert time.monotonic() < deadline, "the peer never acknowledged"
        time.sleep(0.001)  # polling interval of the bounded wait, not pacing


def test_urgent_data_in_an_upload_does_not_end_it(
    tcp_pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    # splice() stops at the urgent mark as if at the end: the upload must go on past it.
    server, client = tcp_pair
    target = tmp_path / "urgent.bin"
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def body() -> None:
        # Three segments, so the urgent byte is neither first nor last.
        client.sendall(b"a" * 1000)
        _wait_until_acknowledged(client)
        client.send(b"!", socket.MSG_OOB)
        _wait_until_acknowledged(client)
        client.sendall(b"b" * 1000)
        client.close()

    _upload(server, target, body)
    # The urgent byte itself is not data (no SO_OOBINLINE on data connections).
    assert target.read_bytes() == b"a" * 1000 + b"b" * 1000


def test_a_huge_data_timeout_is_taken_as_never(
    tcp_pair: tuple[socket.socket, socket.socket],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A download that waits for the client used to overflow poll()'s int milliseconds.
    server, client = tcp_pair
    payload = os.urandom(8 * 1024 * 1024)  # more than the socket buffers hold
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    received = bytearray()
    waiting = threading.Event()
    real_poll = select.poll

    class NoticedPoll:
        """select.poll, telling the reader when send_file waits for the client."""

        def __init__(self) -> None:
            self._poll = real_poll()

        def register(self, fd: int, mask: int) -> None:
            self._poll.register(fd, mask)

        def poll(self, milliseconds: int) -> list[tuple[int, int]]:
            waiting.set()
            return self._poll.poll(milliseconds)

    monkeypatch.setattr(
        copying, "select", types.SimpleNamespace(poll=NoticedPoll, POLLOUT=select.POLLOUT)
    )

    def slow_reader() -> None:
        # Reads once the sender waits for it with the huge timeout (or, failing that, after
        # a deadline, so that the test ends and says so).
        waiting.wait(TIMEOUT)
        _receive_all(client, received)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    fd = os.open(source, os.O_RDONLY)
    try:
        send_file(server, fd, 0, Progress(), 10.0**9)
        server.shutdown(socket.SHUT_WR)
    finally:
        os.close(fd)
        reader.join(TIMEOUT)
    assert waiting.is_set(), "send_file never waited for the client"
    assert bytes(received) == payload
