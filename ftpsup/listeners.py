"""Listening sockets, the one place ftpsup makes them: control listeners and passive ports.

- `open_listener`: the socket itself, with the options every listener needs;
- `bind_listener`: an instance's control listener, with errors an admin can act on; used by
  the supervisor (which binds for its instances, so port 21 works) and by `ftpsup serve`;
- `adopt_listener`: a control listener inherited from a parent by descriptor (`--listen-fd`);
- server/data.py opens each passive port's one-connection listener with `open_listener`.

Rules:
- An AF_INET6 listener always sets IPV6_V6ONLY, so an IPv4 instance and an IPv6 instance can
  share a port number and each serves only its own stack (vsftpd needs two daemons for this).
- SO_REUSEADDR: a port whose previous connection sits in TIME_WAIT can be listened on again;
  Linux still refuses a second listener on the same port.
- A control listener's backlog is large: a burst of clients must wait in the kernel's queue,
  not be dropped. A passive port waits for one connection.
- An inherited descriptor is checked: it must be a listening TCP socket.
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


def open_listener(family: int, host: str, port: int, *, backlog: int) -> socket.socket:
    """Bind and listen on host:port (an AF_INET6 socket is IPv6-only).

    Raises:
        OSError: as bind() or listen() raised it; the socket is closed.
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # The ipv4 instance may use the same port number on its own stack.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_listener(address: str, port: int) -> socket.socket:
    """Bind and listen on address:port (IPv6 sockets are IPv6-only).

    Raises:
        ListenError: with a message an admin can act on (port taken, privilege missing).
    """
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    try:
        return open_listener(family, address, port, backlog=BACKLOG)
    except OSError as exc:
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


def adopt_listener(fd: int) -> socket.socket:
    """Take over a listening socket passed by a parent process as descriptor `fd`.

    Raises:
        ListenError: `fd` is not a socket, or not a listening TCP one.
    """
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ListenError(f"descriptor {fd} is not a socket: {exc.strerror}") from exc
    accepting = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.type != socket.SOCK_STREAM or not accepting:
        sock.detach()
        raise ListenError(f"descriptor {fd} is not a listening TCP socket")
    return sock
