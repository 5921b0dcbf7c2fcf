"""Session: the state of one control connection, and the helpers its command handlers share.

Rules:
- One task (the control loop) runs command handlers; a transfer runs in its own task and
  reports through replies only. Replies go out whole, under one lock, in the order produced.
- Every filesystem call goes through `fs_call`, which runs it in a worker thread.
- Every data endpoint (passive listener, lease, data socket) is released on every path:
  success, error, ABOR and disconnect (`close_data_endpoints`, `cleanup`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import attrs
import trio

from ftpsup.logs import log_reply
from ftpsup.proto import paths
from ftpsup.proto.lines import LineBuffer
from ftpsup.proto.replies import Reply, reply
from ftpsup.server.context import InstanceContext
from ftpsup.server.data import (
    OverAddressLimit,
    PassiveEndpoint,
    accept_data,
    connect_data,
    open_passive,
)
from ftpsup.server.fs import JailedFs
from ftpsup.server.tls_sessions import SessionOwner
from ftpsup.server.transfer import Progress

P = ParamSpec("P")
T = TypeVar("T")

MLST_FACTS_ALL = ("type", "size", "modify", "perm", "unique", "UNIX.mode")


def os_error_reply(exc: OSError) -> Reply:
    """Map an OS error on a file operation to its FTP reply (RFC 959 §4.2)."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return reply(452, "Insufficient storage space.")
    if code in (errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL):
        return reply(553, "File name not allowed.")
    if code in (errno.ENOENT, errno.ENOTDIR):
        return reply(550, "No such file or directory.")
    if code == errno.EEXIST:
        return reply(550, "File exists.")
    if code == errno.ENOTEMPTY:
        return reply(550, "Directory not empty.")
    if code == errno.EISDIR:
        return reply(550, "Is a directory.")
    if code == errno.EROFS:
        return reply(550, "Read-only file system.")
    if code in (errno.EACCES, errno.EPERM, errno.ELOOP, errno.EXDEV, errno.EBUSY):
        return reply(550, "Permission denied.")
    return reply(451, "Local error in processing.")


class FsFailed:
    """The result of a filesystem call that failed and has been answered already."""


FAILED = FsFailed()


@attrs.define
class TransferState:
    """A transfer in flight: what STAT reports and what ABOR stops."""

    verb: str
    vpath: str
    progress: Progress = attrs.field(factory=Progress)
    done: trio.Event = attrs.field(factory=trio.Event)
    connect_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    sock: socket.socket | None = None
    aborted: bool = False

    def abort(self) -> None:
        """Stop the transfer at once: cancel the connect wait, wake the copying thread."""
        self.aborted = True
        self.connect_scope.cancel()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                # The base-class shutdown, also for a TLS socket: SSLSocket.shutdown first
                # drops its TLS state, and the copying thread would then read ciphertext as
                # data (or send a block in clear). This way its next TLS read or write fails.
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)


@attrs.define
class Session:
    ctx: InstanceContext
    stream: trio.abc.Stream
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
    # Login state
    pending_user: str | None = None
    user: str | None = None
    anonymous: bool = False
    user_may_write: bool = False
    fs: JailedFs | None = None
    umask: int = 0o022
    login_failures: int = 0
    unknown_before_login: int = 0
    # Protocol state
    cwd: str = "/"
    ascii: bool = False
    rest: int = 0
    rename_from: str | None = None
    epsv_all: bool = False
    mlst_facts: tuple[str, ...] = MLST_FACTS_ALL
    passive: PassiveEndpoint | None = None
    active_target: tuple[str, int] | None = None
    transfer: TransferState | None = None
    closing: bool = False
    lines: LineBuffer = attrs.field(factory=LineBuffer)
    # TLS (RFC 4217): the context the control connection began with, which its data
    # connections use, and its entry in the instance's session registry.
    tls_context: ssl.SSLContext | None = None
    tls_handshaking: bool = False
    tls_owner: SessionOwner | None = None
    pbsz_set: bool = False
    prot_private: bool = False

    # -- basics -------------------------------------------------------------------------

    @property
    def log(self) -> logging.Logger:
        return self.ctx.log

    @property
    def is_ipv6(self) -> bool:
        return self.family == socket.AF_INET6

    @property
    def control_tls(self) -> bool:
        return self.tls_context is not None

    @property
    def logged_in(self) -> bool:
        return self.user is not None

    @property
    def log_user(self) -> str:
        return self.user or self.pending_user or "?"

    async def send(self, message: Reply) -> None:
        if self.ctx.config.log_ftp_protocol:
            log_reply(self.log, self.user, self.peer_ip, message.code, " ".join(message.lines))
        data = message.to_bytes()
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
                        self.closing = True
                if waiting.cancelled_caught:
                    self.log.info(
                        "reply to %s not read within the idle timeout; closing", self.peer_ip
                    )
                    self.closing = True
        finally:
            self.send_lock.release()
        if not rest:
            await trio.lowlevel.checkpoint()

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
            self.closing = True
            return b""
        return data[sent:]

    async def reply(self, code: int, *lines: str) -> None:
        await self.send(reply(code, *lines))

    async def fs_call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking filesystem call in a worker thread."""

        def call() -> T:
            return fn(*args, **kwargs)

        return await trio.to_thread.run_sync(call, limiter=self.ctx.fs_limiter)

    async def fs_or_reply(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T | FsFailed:
        """Run a filesystem call in a thread; on OSError answer the client and return FAILED."""
        try:
            return await self.fs_call(fn, *args, **kwargs)
        except OSError as exc:
            await self.send(os_error_reply(exc))
            return FAILED

    def resolve(self, arg: str) -> str:
        """Virtual path for a client argument; raises paths.PathError (553)."""
        return paths.resolve(self.cwd, arg)

    def write_allowed(self, verb: str) -> bool:
        """May this session run the write verb `verb`? (vsftpd's anon_* rules for anonymous)."""
        cfg = self.ctx.config
        if not cfg.write_enable:
            return False
        if not self.anonymous:
            return self.user_may_write
        if verb in ("STOR", "STOU", "APPE"):
            return cfg.anon_upload_enable
        if verb == "MKD":
            return cfg.anon_mkdir_write_enable
        return cfg.anon_other_write_enable

    def take_rest(self) -> int:
        offset, self.rest = self.rest, 0
        return offset

    # -- data endpoints -----------------------------------------------------------------

    def close_data_endpoints(self) -> None:
        if self.passive is not None:
            self.passive.close()
            self.passive = None
        self.active_target = None

    async def open_passive_endpoint(self) -> PassiveEndpoint | OverAddressLimit | None:
        """Lease a passive port and listen on it (see data.open_passive for the outcomes)."""
        self.close_data_endpoints()
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

    def has_data_endpoint(self) -> bool:
        return self.passive is not None or self.active_target is not None

    async def open_data_connection(self) -> socket.socket:
        """Accept or connect the data connection prepared by PASV/EPSV or PORT/EPRT."""
        cfg = self.ctx.config
        if self.passive is not None:
            return await accept_data(
                self.passive,
                self.peer_ip,
                promiscuous=cfg.pasv_promiscuous,
                accept_seconds=cfg.accept_timeout,
                log=self.log,
            )
        assert self.active_target is not None
        return await connect_data(
            self.family,
            self.active_target,
            local_ip=self.local_ip,
            source_port=cfg.ftp_data_port if cfg.connect_from_port_20 else None,
            connect_seconds=cfg.connect_timeout,
            log=self.log,
        )

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

    def disarm_idle_timeout(self) -> None:
        """While a command runs: no idle clock, only the login clock (if still running)."""
        assert self.nursery is not None
        self.nursery.cancel_scope.deadline = self.login_deadline

    def timed_out(self) -> bool:
        """Whether the idle or login deadline has fired (a fired scope stays cancelled)."""
        return self.nursery is not None and self.nursery.cancel_scope.cancel_called

    def login_timed_out(self) -> bool:
        """Whether the deadline that fired was login_timeout's (ProFTPD's TimeoutLogin)."""
        return not self.logged_in and trio.current_time() >= self.login_deadline

    def stop_login_clock(self) -> None:
        """At login; called while the login command runs (the idle clock is disarmed)."""
        self.login_deadline = math.inf
        if self.nursery is not None:
            self.nursery.cancel_scope.deadline = math.inf

    def restart_login_clock(self) -> None:
        """After REIN the connection is not logged in again, and gets a fresh login_timeout."""
        self.login_deadline = trio.current_time() + self.ctx.config.login_timeout
        if self.nursery is not None:
            self.nursery.cancel_scope.deadline = self.login_deadline

    # -- transfers ----------------------------------------------------------------------

    def start_transfer(
        self, state: TransferState, run: Callable[[TransferState], Awaitable[None]]
    ) -> None:
        assert self.nursery is not None
        self.transfer = state

        async def runner() -> None:
            try:
                await run(state)
            finally:
                if state.sock is not None:
                    state.sock.close()
                self.close_data_endpoints()
                self.transfer = None
                state.done.set()
                if self.awaiting_command:
                    self.arm_idle_timeout()

        self.nursery.start_soon(runner)

    async def wait_transfer(self) -> None:
        if self.transfer is not None:
            await self.transfer.done.wait()

    # -- end of session -----------------------------------------------------------------

    def logout(self) -> None:
        if self.fs is not None:
            self.fs.close()
            self.fs = None
        self.user = None
        if self.tls_owner is not None:
            self.ctx.tls.registry.logged_out(self.tls_owner)
        self.pending_user = None
        self.anonymous = False
        self.user_may_write = False
        self.cwd = "/"

    def cleanup(self) -> None:
        if self.transfer is not None:
            self.transfer.abort()
        self.close_data_endpoints()
        if self.tls_owner is not None:
            # First: the sessions of a closed control connection keep its user.
            self.ctx.tls.registry.closed(self.tls_owner)
        self.logout()


Handler = Callable[[Session, str], Awaitable[None]]
