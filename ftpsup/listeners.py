"""Listening sockets: bound with the options every instance needs, with errors an admin can act on.

Rules:
- An AF_INET6 listener always sets IPV6_V6ONLY, so an IPv4 instance and an IPv6 instance can
  share a port number and each serves only its own stack (vsftpd needs two daemons for this).
- The backlog is large: a burst of clients must wait in the kernel's queue, not be dropped.
- Used by the supervisor (which binds for its instances, so port 21 works) and by
  `ftpsup serve` alike.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from ftpsup.errors import FtpsupError

BACKLOG = 4096


class ListenError(FtpsupError):
    """A listening socket could not be made; the message says why and what to do."""


def where(address: str, port: int) -> str:
    """`127.0.0.1:21` or `[::1]:21`."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def bind_listener(address: str, port: int) -> socket.socket:
    """Bind and listen on address:port (IPv6 sockets are IPv6-only).

    Raises:
        ListenError: with a message an admin can act on (port taken, privilege missing).
    """
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # The ipv4 instance may use the same port number on its own stack.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        at = where(address, port)
        if exc.errno in (errno.EACCES, errno.EPERM) and port < 1024:
            raise ListenError(
                f"cannot listen on {at}: permission denied; ports below 1024 need root "
                "(or CAP_NET_BIND_SERVICE): start ftpsup as root (sudo ftpsup start all), "
                "or set listen_port to 1024 or above"
            ) from exc
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"cannot listen on {at}: address already in use") from exc
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ListenError(f"cannot listen on {at}: no such address on this host") from exc
        raise ListenError(f"cannot listen on {at}: {exc.strerror}") from exc
    return sock
