"""Data connections: passive listeners on leased ports, active connects, peer checks.

Rules:
- Passive ports come only from the shared PortAllocator; a port another program holds is
  skipped (EADDRINUSE) and a full range yields None, never a port outside the range.
- A passive listener serves one data connection and is then closed and its lease released.
- A passive connection from an address other than the control connection's peer is refused
  and logged, unless pasv_promiscuous (vsftpd's rule: it stops a third party from stealing a
  transfer by racing the client to the port).
- Sockets handed to transfer threads are plain non-blocking stdlib sockets. The passive
  listener is one too, waited on with trio.lowlevel.wait_readable: a client has usually
  connected by the time its transfer command is read, and its connection is then taken with
  one accept() call, without a cancel scope or a trio socket around it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import socket

import attrs
import trio

from ftpsup.address_slots import AddressSlot, AddressSlots
from ftpsup.listeners import open_listener
from ftpsup.ports import PortAllocator, PortLease
from ftpsup.proto.addresses import normalize_ip
from ftpsup.server import workers

# Bounds how many busy ports (held by other programs) one PASV skips before giving up.
MAX_BIND_ATTEMPTS = 64


@attrs.define
class PassiveEndpoint:
    """A listening socket on a leased passive port, waiting for one data connection."""

    # Non-blocking; only accept_data waits on it.
    sock: socket.socket
    lease: PortLease
    # The client address's share of the range (max_pasv_per_ip), held as long as the lease.
    slot: AddressSlot | None = None
    # Whether accept_data has waited on the socket (trio must then be told of its closing).
    waited: bool = False

    @property
    def port(self) -> int:
        return self.lease.port

    def close(self) -> None:
        if self.waited:
            # A task waiting in accept_data must be woken (with ClosedResourceError) before
            # the descriptor goes away; outside trio nothing can be waiting on it.
            with contextlib.suppress(RuntimeError):
                trio.lowlevel.notify_closing(self.sock)
        self.sock.close()
        self.lease.release()
        if self.slot is not None:
            self.slot.release()


async def _lease(
    allocator: PortAllocator, busy: set[int], limiter: trio.CapacityLimiter, *, inline: bool
) -> PortLease | None:
    if inline:
        # On tmpfs a lease never waits for a disk: no worker-thread round trip. Only the
        # retry after a short sleep, for a range that looked full, goes to a thread.
        lease = allocator.lease_excluding(busy, second_look=False)
        if lease is not None:
            return lease
    return await workers.run_sync(functools.partial(allocator.lease_excluding, busy), limiter)


class OverAddressLimit:
    """PASV/EPSV refused: the client address holds max_pasv_per_ip passive ports already."""


OVER_ADDRESS_LIMIT = OverAddressLimit()


async def _take_slot(
    slots: AddressSlots, key: str, limit: int, limiter: trio.CapacityLimiter, *, inline: bool
) -> AddressSlot | None:
    if inline:
        # On tmpfs, as for the port leases: no disk to wait for.
        return slots.take(key, limit)
    return await workers.run_sync(functools.partial(slots.take, key, limit), limiter)


async def open_passive(
    allocator: PortAllocator,
    family: int,
    local_ip: str,
    limiter: trio.CapacityLimiter,
    *,
    inline_leases: bool = False,
    address_slots: AddressSlots | None = None,
    address_key: str = "",
    max_per_address: int = 0,
) -> PassiveEndpoint | OverAddressLimit | None:
    """Lease a port and listen on it at `local_ip`.

    With `address_slots`, the client's address key `address_key` must also get one of its
    `max_per_address` slots, held as long as the port (max_pasv_per_ip, across instances).

    Returns:
        The endpoint; OVER_ADDRESS_LIMIT when the client address holds its share already;
        None when the range is exhausted.
    """
    slot = None
    if address_slots is not None:
        slot = await _take_slot(
            address_slots, address_key, max_per_address, limiter, inline=inline_leases
        )
        if slot is None:
            return OVER_ADDRESS_LIMIT
    endpoint = None
    try:
        endpoint = await _listen_on_leased_port(
            allocator, family, local_ip, limiter, inline=inline_leases
        )
    finally:
        if slot is not None and endpoint is None:
            slot.release()
    if endpoint is not None:
        endpoint.slot = slot
    return endpoint


async def _listen_on_leased_port(
    allocator: PortAllocator,
    family: int,
    local_ip: str,
    limiter: trio.CapacityLimiter,
    *,
    inline: bool,
) -> PassiveEndpoint | None:
    """Lease a port and listen on it at `local_ip`; None when the range is exhausted.

    Raises:
        OSError: a lock file or the socket could not be opened (EMFILE at the descriptor
            limit, an unwritable lease directory); no lease is kept.
    """
    busy: set[int] = set()
    for _ in range(MAX_BIND_ATTEMPTS):
        lease = await _lease(allocator, busy, limiter, inline=inline)
        if lease is None:
            return None
        try:
            sock = open_listener(family, local_ip, lease.port, backlog=1)
            sock.setblocking(False)
        except OSError as exc:
            lease.release()
            if exc.errno != errno.EADDRINUSE:
                raise
            busy.add(lease.port)
            continue
        return PassiveEndpoint(sock, lease)
    return None


def _accepted(conn: socket.socket) -> socket.socket:
    conn.setblocking(False)
    return conn


def _to_stdlib(sock: trio.socket.SocketType) -> socket.socket:
    std = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    std.setblocking(False)
    return std


async def accept_data(
    endpoint: PassiveEndpoint,
    expected_ip: str,
    *,
    promiscuous: bool,
    accept_seconds: float,
    log: logging.Logger,
) -> socket.socket:
    """Accept the client's data connection, refusing connections from other hosts.

    Raises:
        trio.TooSlowError: nobody acceptable connected within `accept_seconds`.
        trio.ClosedResourceError: the endpoint was closed meanwhile.
        OSError: accept() failed.
    """
    expected = normalize_ip(expected_ip)
    listener = endpoint.sock
    # Cancellation (ABOR) is honoured, but without a trip through the scheduler.
    await trio.lowlevel.checkpoint_if_cancelled()
    # Nearly always the client is there already: no cancel scope, no wait.
    conn = _accept_from(listener, endpoint.port, expected, promiscuous, log)
    if conn is not None:
        return conn
    endpoint.waited = True
    with trio.fail_after(accept_seconds):
        while True:
            await trio.lowlevel.wait_readable(listener)
            conn = _accept_from(listener, endpoint.port, expected, promiscuous, log)
            if conn is not None:
                return conn


def _accept_from(
    listener: socket.socket, port: int, expected: str, promiscuous: bool, log: logging.Logger
) -> socket.socket | None:
    """The waiting connection if it is acceptable; None when none waits (or it was refused)."""
    try:
        conn, address = listener.accept()
    except BlockingIOError:
        return None
    peer = normalize_ip(str(address[0]))
    if promiscuous or peer == expected:
        return _accepted(conn)
    log.warning(
        "passive connection to port %d from %s refused: control connection is from %s",
        port,
        peer,
        expected,
    )
    conn.close()
    return None


async def connect_data(
    family: int,
    target: tuple[str, int],
    *,
    local_ip: str,
    source_port: int | None,
    connect_seconds: float,
    log: logging.Logger,
) -> socket.socket:
    """Open an active (PORT/EPRT) data connection to the client.

    With `source_port` (connect_from_port_20) the connection leaves from that port; when the
    process may not bind it, the connection leaves from any port and a warning is logged,
    since refusing every active transfer would help no one.

    Raises:
        trio.TooSlowError: the client did not accept within `connect_seconds`.
        OSError: the connection was refused.
    """
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        if source_port is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                await sock.bind((local_ip, source_port))
            except OSError as exc:
                log.warning("cannot connect from port %d (%s); using any port", source_port, exc)
                sock.close()
                sock = trio.socket.socket(family, socket.SOCK_STREAM)
        with trio.fail_after(connect_seconds):
            await sock.connect(target)
    except BaseException:
        sock.close()
        raise
    return _to_stdlib(sock)
