"""The control connection: accept checks, the command loop, and the end of a session.

Theory of operation: one task per connection owns the Session and its state machine
(proto.session.FtpSession). It reads a line, hands the parsed command to the machine, and
carries out the replies and actions that come back (executor.run_items); a transfer runs in a
child task of the connection's nursery. Replies to commands pipelined in one read are sent
together when the loop next waits for input.

Rules:
- Per-address limits count a client by its address key (proto.limits): an IPv6 client by its
  per_ip_ipv6_prefix network. Over max_per_ip a connection gets 421 and is closed.
- A connection not logged in within login_timeout of its accept gets 421 and is closed,
  whatever it was doing (a TLS handshake, a slow PASS): commands do not restart that clock.
- Every exit path (QUIT, EOF, timeout, error, instance shutdown) aborts a running transfer and
  releases every data endpoint, lease and opened file (Session.cleanup).
"""

from __future__ import annotations

import contextlib
import socket

import trio

from ftpsup import __version__
from ftpsup.logs import log_command, log_connect
from ftpsup.proto.commands import parse_command
from ftpsup.proto.lines import LineBuffer, LineTooLong
from ftpsup.proto.replies import Reply
from ftpsup.proto.session.machine import FtpSession
from ftpsup.server.context import InstanceContext
from ftpsup.server.executor import run_items
from ftpsup.server.reading import Eof, read_line
from ftpsup.server.session import Session

# How long a parting 421 may take to go out to a client that does not read.
REFUSAL_SEND_SECONDS = 5


def _banner(ctx: InstanceContext) -> str:
    return ctx.banner or ctx.config.ftpd_banner or f"(ftpsup {__version__})"


async def _command_loop(s: Session) -> None:
    cfg = s.ctx.config
    s.lines = LineBuffer(cfg.max_command_length)
    # An implicit FTPS client speaks TLS from its first byte: never a clear-text reply.
    s.tls_handshaking = cfg.implicit_ssl
    await run_items(s, s.machine.connected(_banner(s.ctx)))
    while not s.closing:
        s.awaiting_command = True
        # The idle clock stays armed while a command needs no I/O (run_items takes it off
        # before the first await of one that does): one deadline change per such command.
        s.arm_idle_timeout()
        try:
            item = await read_line(s)
        finally:
            s.awaiting_command = False
        if s.timed_out():
            # The deadline fired in the same scheduler pass as the line arrived: the scope
            # stays cancelled, so the command could not run to its end. Time out instead.
            return
        if isinstance(item, Eof):
            return
        if isinstance(item, LineTooLong):
            await run_items(s, s.machine.line_too_long())
            continue
        cmd = parse_command(item)
        if cfg.log_ftp_protocol:
            log_command(s.log, s.machine.state.user, s.peer_ip, cmd.loggable())
        try:
            await run_items(s, s.machine.command(cmd))
        except Exception:
            # A bug in one command must not end the session: log it and answer.
            s.log.exception("command from %s failed", s.peer_ip)
            await run_items(s, s.machine.internal_error())
    await s.flush()


def _address(sockname: object) -> str:
    assert isinstance(sockname, tuple)
    return str(sockname[0]).split("%", 1)[0]


async def serve_control(ctx: InstanceContext, stream: trio.SocketStream) -> None:
    """Serve one control connection from greeting to close."""
    sock = stream.socket
    try:
        peer_ip = _address(sock.getpeername())
        local_ip = _address(sock.getsockname())
        # ftplib and others send ABOR with MSG_OOB; keep the urgent byte in the stream.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    except OSError:
        await stream.aclose()
        return
    cfg = ctx.config
    # The login clock starts here, at accept: the TLS handshake counts against it.
    login_deadline = trio.current_time() + cfg.login_timeout
    log_connect(ctx.logs.control, peer_ip)
    if cfg.max_clients and ctx.sessions >= cfg.max_clients:
        await _refuse(stream, "421 There are too many connected users, please try later.\r\n")
        return
    key = ctx.client_key(peer_ip)
    # The same string for an IPv4 peer: one object fewer held by every session.
    key = peer_ip if key == peer_ip else key
    if not ctx.sessions_per_ip.take(key):
        ctx.log_refusal(
            "max_per_ip",
            key,
            "connection from %s refused: %d sessions from %s (max_per_ip)",
            peer_ip,
            ctx.sessions_per_ip.count(key),
            key,
        )
        await _refuse(stream, "421 There are too many connections from your internet address.\r\n")
        return
    ctx.sessions += 1
    s = Session(
        ctx=ctx,
        stream=stream,
        machine=FtpSession(cfg, peer_ip=peer_ip, ipv6=sock.family == socket.AF_INET6),
        peer_ip=peer_ip,
        local_ip=local_ip,
        family=sock.family,
        client_key=key,
        login_deadline=login_deadline,
    )
    try:
        async with trio.open_nursery() as nursery:
            s.nursery = nursery
            # The login clock runs from here, through an implicit TLS handshake.
            s.disarm_idle_timeout()
            try:
                await _command_loop(s)
            finally:
                if s.transfer is not None:
                    s.transfer.abort()
        # Only the idle and login clocks cancel the session's own scope (session.py).
        if s.timed_out() and s.login_timed_out():
            await _login_timed_out(s)
        elif s.timed_out():
            await run_items(s, s.machine.timed_out(login=False))
            await s.flush()
    except Exception:
        ctx.log.exception("session from %s failed", peer_ip)
    finally:
        s.cleanup()
        ctx.sessions -= 1
        ctx.sessions_per_ip.release(key)
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            # AUTH TLS may have replaced the stream: close the one in use.
            await s.stream.aclose()


async def _login_timed_out(s: Session) -> None:
    items = s.machine.timed_out(login=True)
    if s.tls_handshaking:
        # The client is speaking TLS and waits for handshake records: a reply in clear
        # text would only be read as a broken handshake. The log line still goes out.
        s.outgoing.clear()
        await run_items(s, [i for i in items if not isinstance(i, Reply)])
        s.outgoing.clear()
        return
    # A client that does not read must not keep the slot for the send timeout.
    with trio.move_on_after(REFUSAL_SEND_SECONDS):
        await run_items(s, items)
        await s.flush()


async def _refuse(stream: trio.SocketStream, text: str) -> None:
    with trio.move_on_after(REFUSAL_SEND_SECONDS):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(text.encode())
    await stream.aclose()
