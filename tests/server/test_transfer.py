"""send_bytes_now: a listing goes out on the event loop when the socket takes it whole."""

from __future__ import annotations

import socket
import threading

import pytest

from ftpsup.server.transfer import Progress, send_bytes, send_bytes_now


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
