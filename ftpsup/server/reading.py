"""Reading the control connection: lines for the state machine, and reading ahead during a wait.

Rules:
- Input is bounded: a line over max_command_length is reported as LineTooLong (500) and
  discarded (proto.lines.LineBuffer).
- Replies queued for the client are flushed before the session waits for input: the replies
  to commands pipelined in one read go out together, in one send.
- While a command waits for a running transfer, the connection is still read (up to
  READ_AHEAD_LIMIT) into the line buffer, so a client that goes away is noticed at once: its
  transfer is aborted and its passive lease released, instead of waiting out accept_timeout.
"""

from __future__ import annotations

import os

import trio

from ftpsup.proto.lines import LineTooLong
from ftpsup.server.session import Session
from ftpsup.server.transfer.owner import RunningTransfer

RECEIVE_SIZE = 16384
# How much a client may send behind a command that waits for a transfer (16 reads): enough
# for any pipelining client; past it the connection is left unread until the transfer ends.
READ_AHEAD_LIMIT = 16 * RECEIVE_SIZE


class Eof:
    """The control connection ended."""


EOF = Eof()


async def receive(stream: trio.abc.Stream) -> bytes:
    """Some bytes from the control connection; b"" at its end.

    A plain connection is read straight from its descriptor: an idle session then waits in
    one wait_readable, without the frames of trio's SocketStream and socket layers, which
    were a tenth of the memory an idle session holds.
    """
    if type(stream) is not trio.SocketStream:
        return bytes(await stream.receive_some(RECEIVE_SIZE))
    fd = stream.socket.fileno()
    await trio.lowlevel.checkpoint_if_cancelled()
    yielded = False
    while True:
        try:
            data = os.read(fd, RECEIVE_SIZE)
        except BlockingIOError:
            pass
        else:
            if not yielded:
                # Yield even when data was at hand: a client streaming bytes without a line
                # end must not keep the event loop from every other session.
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        # Outside the except clause: waiting inside it would keep the exception and its
        # traceback alive for as long as the session is idle.
        if yielded:
            await trio.lowlevel.wait_readable(fd)
        else:
            # The reply just sent is usually answered by the time the other sessions have had
            # their turn: one pass of the scheduler first, then the poller. Registering with
            # epoll for every command was a sixth of a busy server's CPU.
            yielded = True
            await trio.lowlevel.checkpoint()


async def read_line(s: Session) -> bytes | LineTooLong | Eof:
    """The next command line; queued replies go out before the session waits for one."""
    while True:
        # s.lines afresh each time: AUTH TLS replaces the buffer.
        item = s.lines.next_line()
        if item is not None:
            return item
        await s.flush()
        try:
            data = await receive(s.stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return EOF
        if not data:
            return EOF
        s.lines.feed(data)
        # Not kept in this frame while the session waits for its next command.
        del data


async def wait_transfer_reading(s: Session, transfer: RunningTransfer) -> bool:
    """Wait for `transfer` to end while the control connection is still read.

    Returns True when the client went away meanwhile (the transfer was then aborted). Lines
    read meanwhile queue in s.lines for the control loop.
    """
    gone = False

    async def read_ahead() -> None:
        # Cancelled only while waiting for input: a read that returned is always fed, so no
        # byte is lost (receive shields the checkpoint after its read).
        nonlocal gone
        lines = s.lines
        for _ in range(READ_AHEAD_LIMIT // RECEIVE_SIZE):
            try:
                data = await receive(s.stream)
            except trio.BusyResourceError:
                return  # the TLS layer waits on the socket itself: leave the reading to the loop
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                s.log.info("%s closed the control connection; its transfer is aborted", s.peer_ip)
                gone = True
                transfer.abort()
                return
            lines.feed(data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_ahead)
        await transfer.done.wait()
        nursery.cancel_scope.cancel()
    return gone
