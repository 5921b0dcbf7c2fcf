"""InstanceContext: what every session of one instance shares.

Rules: built once per instance process by ftpsup.server.instance; sessions read it, and only
the connection counters change after start-up.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

import attrs
import trio

from ftpsup.config import InstanceConfig
from ftpsup.logs import XferLog
from ftpsup.ports import PortAllocator
from ftpsup.server.tls_sessions import InstanceTls
from ftpsup.users import UserDirectory


def _fs_limiter() -> trio.CapacityLimiter:
    return trio.CapacityLimiter(32)


def _transfer_limiter() -> trio.CapacityLimiter:
    # Each running transfer holds one thread for its whole length.
    return trio.CapacityLimiter(512)


def _handshake_limiter() -> trio.CapacityLimiter:
    # A handshake holds a thread only while the client is actively handshaking.
    return trio.CapacityLimiter(128)


def _login_limiter() -> trio.CapacityLimiter:
    # scrypt is CPU- and memory-heavy: a burst of logins must not take every core.
    return trio.CapacityLimiter(2)


@attrs.define
class InstanceContext:
    config: InstanceConfig
    users: UserDirectory
    ports: PortAllocator
    log: logging.Logger
    xferlog: XferLog | None = None
    fs_limiter: trio.CapacityLimiter = attrs.field(factory=_fs_limiter)
    transfer_limiter: trio.CapacityLimiter = attrs.field(factory=_transfer_limiter)
    login_limiter: trio.CapacityLimiter = attrs.field(factory=_login_limiter)
    handshake_limiter: trio.CapacityLimiter = attrs.field(factory=_handshake_limiter)
    clock: Callable[[], float] = time.time
    sessions: int = 0
    sessions_per_ip: collections.Counter[str] = attrs.field(factory=collections.Counter)
    # The shared TLS context and which control connection each of its sessions belongs to.
    tls: InstanceTls = attrs.field(factory=InstanceTls)
    # Replaced live when the admin reloads; sessions read it when they greet.
    banner: str = ""
    # The address PASV advertises when pasv_address is set: pasv_address itself, or with
    # pasv_addr_resolve the IPv4 address its host name resolves to (refreshed while running).
    pasv_host: str = ""
    # The passive-port lease files are on tmpfs: leases are taken on the event loop.
    leases_in_memory: bool = False
