"""The control connection: read lines, dispatch commands in order, time out idle sessions.

Theory of operation: one task per connection owns the Session and runs every command handler,
so handlers never interleave. A transfer runs in a child task of the connection's nursery. While
it runs, the loop keeps reading: ABOR, STAT, NOOP and QUIT are answered at once (RFC 959
§4.1.3), and any other command waits until the transfer's final reply has gone out, so replies
stay in the order of the commands. While such a command waits, the connection is still read
into the line buffer, so a client that goes away is noticed at once: its transfer is aborted
and its passive lease released, instead of waiting out accept_timeout.

Rules:
- Input is bounded: a line over max_command_length gets 500 and is discarded.
- Per-address limits count a client by its address key (proto.limits): an IPv6 client by its
  per_ip_ipv6_prefix network. Over max_per_ip a connection gets 421 and is closed.
- A connection not logged in within login_timeout of its accept gets 421 and is closed,
  whatever it was doing (a TLS handshake, a slow PASS): commands do not restart that clock.
- Every exit path (QUIT, EOF, timeout, error, instance shutdown) aborts a running transfer and
  releases every data endpoint and lease (Session.cleanup).
"""

from __future__ import annotations

import contextlib
import os
import socket

import trio

from ftpsup import __version__
from ftpsup.logs import log_command, log_connect
from ftpsup.proto.commands import COMMANDS, HTTP_VERBS, parse_command, precheck
from ftpsup.proto.lines import LineBuffer, LineTooLong
from ftpsup.proto.replies import Reply, reply
from ftpsup.server import (
    handlers_data,
    handlers_files,
    handlers_info,
    handlers_login,
    handlers_tls,
)
from ftpsup.server.context import InstanceContext
from ftpsup.server.handlers_tls import start_tls
from ftpsup.server.session import Handler, Session, TransferState

HANDLERS: dict[str, Handler] = {
    **handlers_login.HANDLERS,
    **handlers_files.HANDLERS,
    **handlers_data.HANDLERS,
    **handlers_info.HANDLERS,
    **handlers_tls.HANDLERS,
}

# vsftpd 3.0.4's limit: a client that is not talking FTP is dropped before it can log in.
MAX_UNKNOWN_BEFORE_LOGIN = 10
RECEIVE_SIZE = 16384
# How much a client may send behind a command that waits for a transfer (16 reads): enough
# for any pipelining client; past it the connection is left unread until the transfer ends.
READ_AHEAD_LIMIT = 16 * RECEIVE_SIZE
# Verbs that change the control stream itself (TLS on or off): bytes behind them belong to
# the new stream, so nothing is read ahead of them.
STREAM_VERBS = frozenset({"AUTH", "CCC"})
# How long a parting 421 may take to go out to a client that does not read.
REFUSAL_SEND_SECONDS = 5


class _Eof:
    pass


EOF = _Eof()


async def _receive(stream: trio.abc.Stream) -> bytes:
    """Some bytes from the control connection; b"" at its end.

    A plain connection is read straight from its descriptor: an idle session then waits in
    one wait_readable, without the frames of trio's SocketStream and socket layers, which
    were a tenth of the memory an idle session holds.
    """
    if type(stream) is not trio.SocketStream:
        return bytes(await stream.receive_some(RECEIVE_SIZE))
    fd = stream.socket.fileno()
    await trio.lowlevel.checkpoint_if_cancelled()
    while True:
        try:
            data = os.read(fd, RECEIVE_SIZE)
        except BlockingIOError:
            pass
        else:
            # Yield even when data was at hand: a client streaming bytes without a line end
            # must not keep the event loop from every other session.
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        # Outside the except clause: waiting inside it would keep the exception and its
        # traceback alive for as long as the session is idle.
        await trio.lowlevel.wait_readable(fd)


async def _read_line(s: Session) -> bytes | LineTooLong | _Eof:
    while True:
        # Read s.lines afresh each time: AUTH TLS replaces the buffer.
        item = s.lines.next_line()
        if item is not None:
            return item
        try:
            data = await _receive(s.stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return EOF
        if not data:
            return EOF
        s.lines.feed(data)
        # Not kept in this frame while the session waits for its next command.
        del data


async def _dispatch(s: Session, line: bytes) -> None:
    cmd = parse_command(line)
    if s.ctx.config.log_ftp_protocol:
        log_command(s.log, s.user, s.peer_ip, cmd.loggable())
    if not cmd.verb:
        await s.reply(500, "Empty command.")
        return
    if not s.logged_in and cmd.verb in HTTP_VERBS:
        s.log.warning("HTTP request from %s refused", s.peer_ip)
        await s.reply(421, "HTTP protocol commands not allowed.")
        s.closing = True
        return
    spec = COMMANDS.get(cmd.verb)
    if s.transfer is not None and (spec is None or not spec.during_transfer):
        if cmd.verb in STREAM_VERBS:
            await s.wait_transfer()
        else:
            await _wait_transfer_reading(s)
        if s.closing:
            # The client went away meanwhile: a command it queued behind the transfer (say
            # DELE after RETR) must not run once that transfer was cut short.
            return
    if cmd.verb != "RNTO":
        s.rename_from = None
    refusal = precheck(cmd, logged_in=s.logged_in, may_write=s.write_allowed(cmd.verb))
    if refusal is not None:
        await s.send(refusal)
        if spec is None and not s.logged_in:
            s.unknown_before_login += 1
            if s.unknown_before_login >= MAX_UNKNOWN_BEFORE_LOGIN:
                await s.reply(421, "Too many unknown commands; closing.")
                s.closing = True
        return
    await HANDLERS[cmd.verb](s, cmd.arg)


async def _wait_transfer_reading(s: Session) -> None:
    """Wait for the running transfer to end while the control connection is still read.

    The command behind a transfer waits for the transfer's final reply (replies stay in the
    order of the commands), but a client that goes away meanwhile must not keep its passive
    lease until accept_timeout: at the control connection's end the transfer is aborted and
    the session closes. Lines read meanwhile queue in s.lines for the control loop.
    """
    transfer = s.transfer
    if transfer is None:
        return
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_read_ahead, s, transfer)
        await transfer.done.wait()
        nursery.cancel_scope.cancel()


async def _read_ahead(s: Session, transfer: TransferState) -> None:
    # Cancelled only while waiting for input: a read that returned is always fed, so no
    # byte is lost (_receive shields the checkpoint after its read).
    lines = s.lines
    for _ in range(READ_AHEAD_LIMIT // RECEIVE_SIZE):
        try:
            data = await _receive(s.stream)
        except trio.BusyResourceError:
            return  # the TLS layer waits on the socket itself: leave the reading to the loop
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            data = b""
        if not data:
            s.log.info("%s closed the control connection; its transfer is aborted", s.peer_ip)
            s.closing = True
            transfer.abort()
            return
        lines.feed(data)


def _greeting(ctx: InstanceContext) -> Reply:
    banner = ctx.banner or ctx.config.ftpd_banner or f"(ftpsup {__version__})"
    return reply(220, banner)


async def _command_loop(s: Session) -> None:
    cfg = s.ctx.config
    s.lines = LineBuffer(cfg.max_command_length)
    if cfg.implicit_ssl and not await start_tls(s, implicit=True):
        return
    await s.send(_greeting(s.ctx))
    while not s.closing:
        s.awaiting_command = True
        s.arm_idle_timeout()
        try:
            item = await _read_line(s)
        finally:
            s.awaiting_command = False
            s.disarm_idle_timeout()
        if s.timed_out():
            # The deadline fired in the same scheduler pass as the line arrived: the scope
            # stays cancelled, so the command could not run to its end. Time out instead.
            return
        if isinstance(item, _Eof):
            return
        if isinstance(item, LineTooLong):
            await s.reply(500, "Command line too long.")
            continue
        try:
            await _dispatch(s, item)
        except Exception:
            # A bug in one command must not end the session: log it and answer.
            s.log.exception("command from %s failed", s.peer_ip)
            await s.reply(451, "Internal error; the command was not completed.")


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
    log_connect(ctx.log, peer_ip)
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
            s.log.info("idle session from %s timed out", s.peer_ip)
            await s.reply(421, "Timeout.")
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
    seconds = s.ctx.config.login_timeout
    s.log.info("no login from %s within login_timeout (%d s); closing", s.peer_ip, seconds)
    if s.tls_handshaking:
        # The client is speaking TLS and waits for handshake records: a reply in clear
        # text would only be read as a broken handshake.
        return
    # A client that does not read must not keep the slot for the send timeout.
    with trio.move_on_after(REFUSAL_SEND_SECONDS):
        await s.reply(421, f"Login timeout ({seconds} seconds): closing control connection.")


async def _refuse(stream: trio.SocketStream, text: str) -> None:
    with trio.move_on_after(REFUSAL_SEND_SECONDS):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(text.encode())
    await stream.aclose()
