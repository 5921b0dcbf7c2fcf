"""InstanceContext: what every session of one instance shares.

Rules: built once per instance process by ftpsup.server.instance; sessions read it, and only
the connection counters change after start-up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import attrs
import trio

from ftpsup.address_slots import AddressSlots
from ftpsup.config.schema import InstanceConfig
from ftpsup.log_files import InstanceLogs, XferLog
from ftpsup.ports import PortAllocator
from ftpsup.proto.limits import KeyedCounter, RefusalLog, address_key
from ftpsup.server.tls_sessions import InstanceTls
from ftpsup.users.directory import UserDirectory


def _fs_limiter() -> trio.CapacityLimiter:
    return trio.CapacityLimiter(32)


def _transfer_limiter() -> trio.CapacityLimiter:
    # Each running transfer holds one thread for its whole length.
    return trio.CapacityLimiter(512)


def _handshake_limiter() -> trio.CapacityLimiter:
    # A handshake holds a thread only while the client is actively handshaking.
    return trio.CapacityLimiter(128)


# A client refused again and again gets one log line per this many seconds (per limit).
REFUSAL_LOG_SECONDS = 60.0


def _login_limiter() -> trio.CapacityLimiter:
    # scrypt is CPU- and memory-heavy: a burst of logins must not take every core.
    return trio.CapacityLimiter(2)


@attrs.define
class InstanceContext:
    config: InstanceConfig
    users: UserDirectory
    ports: PortAllocator
    xferlog: XferLog | None = None
    # ftpsup.<instance> (`log`) and its children ftpsup.<instance>.<area>.
    logs: InstanceLogs = attrs.field(
        default=attrs.Factory(lambda self: InstanceLogs.of(self.config.name), takes_self=True)
    )
    fs_limiter: trio.CapacityLimiter = attrs.field(factory=_fs_limiter)
    transfer_limiter: trio.CapacityLimiter = attrs.field(factory=_transfer_limiter)
    login_limiter: trio.CapacityLimiter = attrs.field(factory=_login_limiter)
    handshake_limiter: trio.CapacityLimiter = attrs.field(factory=_handshake_limiter)
    clock: Callable[[], float] = time.time
    sessions: int = 0
    # Per client address (proto.limits.address_key): sessions, and control-connection TLS
    # handshakes in progress; max_per_ip and max_tls_handshakes_per_ip are their caps.
    sessions_per_ip: KeyedCounter = attrs.field(
        default=attrs.Factory(lambda self: KeyedCounter(self.config.max_per_ip), takes_self=True)
    )
    handshakes_per_ip: KeyedCounter = attrs.field(
        default=attrs.Factory(
            lambda self: KeyedCounter(self.config.max_tls_handshakes_per_ip), takes_self=True
        )
    )
    # Passive ports per client address, counted across instances in the lease directory.
    pasv_slots: AddressSlots | None = None
    refusals: RefusalLog = attrs.field(factory=lambda: RefusalLog(REFUSAL_LOG_SECONDS))
    # The shared TLS context and which control connection each of its sessions belongs to.
    tls: InstanceTls = attrs.field(factory=InstanceTls)
    # Replaced live when the admin reloads; sessions read it when they greet.
    banner: str = ""
    # The address PASV advertises when pasv_address is set: pasv_address itself, or with
    # pasv_addr_resolve the IPv4 address its host name resolves to (refreshed while running).
    pasv_host: str = ""
    # The passive-port lease files are on tmpfs: leases are taken on the event loop.
    leases_in_memory: bool = False

    @property
    def log(self) -> logging.Logger:
        """The instance's own logger, ftpsup.<instance> (setup_instance_logging's)."""
        return self.logs.main

    def client_key(self, ip: str) -> str:
        """The address key a peer is counted under for the per-address limits."""
        return address_key(ip, ipv6_prefix=self.config.per_ip_ipv6_prefix)

    def log_refusal(self, kind: str, key: str, message: str, *args: object) -> None:
        """Log a refused connection, handshake or lease, at most once a minute per kind and key."""
        left_out = self.refusals.should_log(f"{kind} {key}", trio.current_time())
        if left_out is None:
            return
        if left_out:
            message += " (%d more refused since the last such line)"
            args = (*args, left_out)
        self.log.warning(message, *args)
