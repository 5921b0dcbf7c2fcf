"""Listening sockets for an instance: bound here, or inherited from a parent by descriptor.

Rules:
- An AF_INET6 listener always sets IPV6_V6ONLY, so an IPv4 instance and an IPv6 instance can
  share a port number and each serves only its own stack (vsftpd needs two daemons for this).
- An inherited descriptor is checked: it must be a listening TCP socket.
- The backlog is large: a burst of clients must wait in the kernel's queue, not be dropped.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from ftpsup.errors import FtpsupError

BACKLOG = 4096


class ListenError(FtpsupError):
    """A listening socket could not be made; the message says why and what to do."""


def family_of(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def bind_listener(address: str, port: int) -> socket.socket:
    """Bind and listen on address:port.

    Raises:
        ListenError: with a message an admin can act on (port taken, privilege missing).
    """
    family = family_of(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        where = f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
        if exc.errno == errno.EACCES and port < 1024:
            raise ListenError(
                f"cannot listen on {where}: permission denied; ports below 1024 need root "
                "(or CAP_NET_BIND_SERVICE), or set listen_port to 1024 or above"
            ) from exc
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"cannot listen on {where}: address already in use") from exc
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ListenError(f"cannot listen on {where}: no such address on this host") from exc
        raise ListenError(f"cannot listen on {where}: {exc.strerror}") from exc
    return sock


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
