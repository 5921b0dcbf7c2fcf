"""Session: the resources of one control connection, held for its protocol state machine.

The protocol itself (what to answer, what to do next) is proto.session.FtpSession; this is what
it cannot hold: the control stream and its line buffer, the home's directory descriptors, the
passive listener and its lease, the running transfer, the TLS context and registry entry, and
the idle and login clocks.

Rules:
- Replies are queued (`queue`) and written together (`flush`): the replies to commands a
  client pipelined in one read go out in one send. Everything queued is flushed before the
  session awaits anything, so a reply never waits behind a read or another task's reply.
- Every data endpoint (passive listener, lease, data socket) is released on every path:
  success, error, ABOR and disconnect (`close_passive`, `cleanup`).
"""

from __future__ import annotations

import logging
import math
import os
import ssl

import attrs
import trio

from ftpsup.logs import log_reply
from ftpsup.proto.lines import LineBuffer
from ftpsup.proto.replies import Reply
from ftpsup.proto.session.machine import FtpSession
from ftpsup.server.context import InstanceContext
from ftpsup.server.data import OverAddressLimit, PassiveEndpoint, open_passive
from ftpsup.server.fs import JailedFs
from ftpsup.server.tls_sessions import SessionOwner
from ftpsup.server.transfer.owner import RunningTransfer


@attrs.define
class Session:
    ctx: InstanceContext
    stream: trio.abc.Stream
    machine: FtpSession
    peer_ip: str
    local_ip: str
    family: int
    # What the per-address limits count this client under (InstanceContext.client_key).
    client_key: str = ""
    # login_timeout after accept, until a login stops the clock (inf from then on).
    login_deadline: float = math.inf
    send_lock: trio.Lock = attrs.field(factory=trio.Lock)
    nursery: trio.Nursery | None = None
    awaiting_command: bool = False
    # Whether the deadline is the idle clock's (armed while reading, kept through a command
    # that needs no I/O, taken off before the first await of one that does).
    idle_armed: bool = False
    fs: JailedFs | None = None
    passive: PassiveEndpoint | None = None
    # The transfer prepared (file opened, listing built) and not yet started, then running.
    prepared: RunningTransfer | None = None
    transfer: RunningTransfer | None = None
    lines: LineBuffer = attrs.field(factory=LineBuffer)
    # Replies waiting for the next flush, already encoded.
    outgoing: list[bytes] = attrs.field(factory=list)
    # The stream broke or a reply was not read in time: the session ends.
    broken: bool = False
    # TLS (RFC 4217): the context the control connection began with, which its data
    # connections use, and its entry in the instance's session registry.
    tls_context: ssl.SSLContext | None = None
    # Loaded by LoadTls, used by the StartTls that follows it.
    tls_pending: ssl.SSLContext | None = None
    tls_handshaking: bool = False
    tls_owner: SessionOwner | None = None

    @property
    def log(self) -> logging.Logger:
        """The control connection's logger, `ftpsup.<instance>.control`."""
        return self.ctx.logs.control

    @property
    def closing(self) -> bool:
        return self.broken or self.machine.closing

    @property
    def log_user(self) -> str:
        return self.machine.state.log_user

    # -- replies ------------------------------------------------------------------------

    def queue(self, message: Reply) -> None:
        if self.ctx.config.log_ftp_protocol:
            user = self.machine.state.user
            log_reply(self.log, user, self.peer_ip, message.code, " ".join(message.lines))
        self.outgoing.append(message.to_bytes())

    async def flush(self) -> None:
        """Send every queued reply, in one write when the socket takes it at once."""
        if not self.outgoing:
            return
        data = b"".join(self.outgoing) if len(self.outgoing) > 1 else self.outgoing[0]
        self.outgoing.clear()
        if self.broken:
            return
        try:
            self.send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self.send_lock.acquire()
        try:
            rest = self._send_now(data)
            if rest:
                # A client that stops reading its control connection must not hold the
                # session (and its limits slot) for ever.
                with trio.move_on_after(self.ctx.config.idle_session_timeout) as waiting:
                    try:
                        await self.stream.send_all(rest)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        self.broken = True
                    except trio.Cancelled:
                        # The session's own clock (or the instance's stop) cut a reply the
                        # client did not read: part of it may be out, so nothing can follow
                        # it, and waiting again to send a 421 would only hold the session.
                        self.broken = True
                        raise
                if waiting.cancelled_caught:
                    self.log.info(
                        "reply to %s not read within the idle timeout; closing", self.peer_ip
                    )
                    self.broken = True
        finally:
            self.send_lock.release()

    def _send_now(self, data: bytes) -> bytes:
        """Write what a plain control socket takes at once; returns what is left to send.

        A reply nearly always fits the socket buffer: written here it needs no cancel scope
        and none of the stream layers, which were a good part of the event loop's time per
        command. TLS streams send everything through send_all.
        """
        if type(self.stream) is not trio.SocketStream:
            return data
        try:
            sent = os.write(self.stream.socket.fileno(), data)
        except BlockingIOError:
            return data
        except OSError:
            self.broken = True
            return b""
        return data[sent:]

    # -- data endpoints -----------------------------------------------------------------

    def close_passive(self) -> None:
        if self.passive is not None:
            self.passive.close()
            self.passive = None

    async def open_passive_endpoint(self) -> PassiveEndpoint | OverAddressLimit | None:
        """Lease a passive port and listen on it (see data.open_passive for the outcomes)."""
        self.close_passive()
        cap = self.ctx.config.max_pasv_per_ip
        opened = await open_passive(
            self.ctx.ports,
            self.family,
            self.local_ip,
            self.ctx.fs_limiter,
            inline_leases=self.ctx.leases_in_memory,
            address_slots=self.ctx.pasv_slots if cap else None,
            address_key=self.client_key,
            max_per_address=cap,
        )
        if isinstance(opened, PassiveEndpoint):
            self.passive = opened
        return opened

    # -- idle and login timeouts --------------------------------------------------------
    # Both run on the deadline of the session nursery's own scope rather than on cancel
    # scopes of their own: a scope is ~0.9 KB, held by every idle session. Before login the
    # deadline is never later than login_deadline, also while a command runs (AUTH TLS, PASS)
    # and during an implicit TLS handshake. Expiry cancels the nursery, which holds no
    # transfer then, and control.py answers 421.

    def arm_idle_timeout(self) -> None:
        """Start the idle clock, unless a transfer is running (it restarts when that ends)."""
        assert self.nursery is not None
        idle = self.ctx.config.idle_session_timeout
        busy = self.transfer is not None
        deadline = math.inf if busy else trio.current_time() + idle
        self.nursery.cancel_scope.deadline = min(deadline, self.login_deadline)
        self.idle_armed = True

    def disarm_idle_timeout(self) -> None:
        """While a command waits for I/O: no idle clock, only the login clock (if running)."""
        assert self.nursery is not None
        self.nursery.cancel_scope.deadline = self.login_deadline
        self.idle_armed = False

    def timed_out(self) -> bool:
        """Whether the idle or login deadline has fired (a fired scope stays cancelled)."""
        return self.nursery is not None and self.nursery.cancel_scope.cancel_called

    def login_timed_out(self) -> bool:
        """Whether the deadline that fired was login_timeout's (ProFTPD's TimeoutLogin)."""
        return not self.machine.state.logged_in and trio.current_time() >= self.login_deadline

    def stop_login_clock(self) -> None:
        """At login; called while the login command runs (the idle clock is disarmed)."""
        self.login_deadline = math.inf
        if self.nursery is not None and not self.idle_armed:
            self.nursery.cancel_scope.deadline = math.inf

    def restart_login_clock(self) -> None:
        """After REIN the connection is not logged in again, and gets a fresh login_timeout."""
        self.login_deadline = trio.current_time() + self.ctx.config.login_timeout
        if self.nursery is not None:
            self.nursery.cancel_scope.deadline = min(
                self.login_deadline, self.nursery.cancel_scope.deadline
            )

    # -- end of session -----------------------------------------------------------------

    def logout(self) -> None:
        if self.fs is not None:
            self.fs.close()
            self.fs = None
        if self.tls_owner is not None:
            self.ctx.tls.registry.logged_out(self.tls_owner)

    def cleanup(self) -> None:
        if self.transfer is not None:
            self.transfer.abort()
        if self.prepared is not None:
            self.prepared.close()
            self.prepared = None
        self.close_passive()
        if self.tls_owner is not None:
            # First: the sessions of a closed control connection keep its user.
            self.ctx.tls.registry.closed(self.tls_owner)
        self.logout()
