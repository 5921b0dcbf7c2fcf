"""Listening sockets for an instance: inherited from a parent by descriptor, or bound
(ftpsup.listeners does the binding).

Rules: an inherited descriptor is checked: it must be a listening TCP socket.
"""

from __future__ import annotations

import socket

from ftpsup.listeners import ListenError, bind_listener

__all__ = ["ListenError", "adopt_listener", "bind_listener"]


def adopt_listener(fd: int) -> socket.socket:
    """Take over a listening socket passed by a parent process as descriptor `fd`."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ListenError(f"descriptor {fd} is not a socket: {exc.strerror}") from exc
    accepting = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.type != socket.SOCK_STREAM or not accepting:
        sock.detach()
        raise ListenError(f"descriptor {fd} is not a listening TCP socket")
    return sock
