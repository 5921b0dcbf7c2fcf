"""Data connections: passive listeners on leased ports, active connects, peer checks.

Rules:
- Passive ports come only from the shared PortAllocator; a port another program holds is
  skipped (EADDRINUSE) and a full range yields None, never a port outside the range.
- A passive listener serves one data connection and is then closed and its lease released.
- A passive connection from an address other than the control connection's peer is refused
  and logged, unless pasv_promiscuous (vsftpd's rule: it stops a third party from stealing a
  transfer by racing the client to the port).
- Sockets handed to transfer threads are plain non-blocking stdlib sockets.
"""

from __future__ import annotations

import errno
import logging
import socket

import attrs
import trio

from ftpsup.address_slots import AddressSlot, AddressSlots
from ftpsup.listeners import open_listener
from ftpsup.ports import PortAllocator, PortLease
from ftpsup.proto.addresses import normalize_ip

# Bounds how many busy ports (held by other programs) one PASV skips before giving up.
MAX_BIND_ATTEMPTS = 64


@attrs.define
class PassiveEndpoint:
    """A listening socket on a leased passive port, waiting for one data connection."""

    sock: trio.socket.SocketType
    lease: PortLease
    # The client address's share of the range (max_pasv_per_ip), held as long as the lease.
    slot: AddressSlot | None = None

    @property
    def port(self) -> int:
        return self.lease.port

    def close(self) -> None:
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
    return await trio.to_thread.run_sync(allocator.lease_excluding, busy, limiter=limiter)


class OverAddressLimit:
    """PASV/EPSV refused: the client address holds max_pasv_per_ip passive ports already."""


OVER_ADDRESS_LIMIT = OverAddressLimit()


async def _take_slot(
    slots: AddressSlots, key: str, limit: int, limiter: trio.CapacityLimiter, *, inline: bool
) -> AddressSlot | None:
    if inline:
        # On tmpfs, as for the port leases: no disk to wait for.
        return slots.take(key, limit)
    return await trio.to_thread.run_sync(slots.take, key, limit, limiter=limiter)


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
        except OSError as exc:
            lease.release()
            if exc.errno != errno.EADDRINUSE:
                raise
            busy.add(lease.port)
            continue
        return PassiveEndpoint(trio.socket.from_stdlib_socket(sock), lease)
    return None


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
    """
    expected = normalize_ip(expected_ip)
    with trio.fail_after(accept_seconds):
        while True:
            conn, address = await endpoint.sock.accept()
            peer = normalize_ip(str(address[0]))
            if promiscuous or peer == expected:
                return _to_stdlib(conn)
            log.warning(
                "passive connection to port %d from %s refused: control connection is from %s",
                endpoint.port,
                peer,
                expected,
            )
            conn.close()


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
