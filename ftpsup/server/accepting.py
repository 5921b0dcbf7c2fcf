"""Accepting control connections: a burst taken in batches, a shortage of descriptors waited out.

Theory of operation: accept() is called on the listening socket itself, up to ACCEPT_BATCH
times per turn of the scheduler, and the task waits only when the kernel's queue is empty.
Each connection is served by serve_control, started directly in the instance's nursery.
"""

from __future__ import annotations

import errno
import os
import socket

import trio

from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control

# accept() failures that mean "out of descriptors or memory for now": wait and retry.
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
# accept() failures of one connection that went away (or that a firewall refused) before it
# was taken: the next one is accepted. trio.SocketListener's list.
_ACCEPT_SKIP_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EPERM", "ECONNABORTED", "EPROTO", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET",
        "EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH", "ENOSR", "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT", "ETIMEDOUT", "ECONNRESET",
    )
    if hasattr(errno, name)
)  # fmt: skip
# Connections taken from a full accept queue before other tasks get a turn.
ACCEPT_BATCH = 16
# The first retry comes soon; each further one waits twice as long, up to the cap, so a long
# shortage costs one wake-up a second, not ten.
_ACCEPT_RETRY_SECONDS = 0.1
_ACCEPT_RETRY_MAX_SECONDS = 1.0


async def accept_sessions(
    ctx: InstanceContext, listener: socket.socket, handlers: trio.Nursery
) -> None:
    """Accept connections for ever from the non-blocking `listener`, each served by
    serve_control in `handlers`.

    serve_control is started directly (trio.serve_listeners would wrap each session in one
    more task frame, kept by every idle session) and closes its stream itself. accept() is
    called on the socket itself, up to ACCEPT_BATCH times per turn, and the task waits only
    when the queue is empty: a burst of connections costs one accept() call each, without
    trio.SocketListener's two scheduler round trips and socket wrapper per connection.

    Resource handling: when accept() fails for want of descriptors or memory, the waiting
    connections stay queued in the kernel and accept() is retried with a growing delay. One
    line is logged when the shortage starts and one when it ends (with the number of failed
    attempts), never one per attempt.
    """
    failures = 0
    started = 0.0
    delay = _ACCEPT_RETRY_SECONDS
    turn = 0
    while True:
        turn += 1
        if turn > ACCEPT_BATCH:
            turn = 0
            await trio.lowlevel.checkpoint()
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            turn = 0
            await trio.lowlevel.wait_readable(listener)
            continue
        except OSError as exc:
            if exc.errno in _ACCEPT_SKIP_ERRNOS:
                continue
            if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                raise
            if not failures:
                started = trio.current_time()
                ctx.logs.control.error(
                    "accept failed: %s; new connections wait in the queue until it clears",
                    os.strerror(exc.errno or 0),
                )
            failures += 1
            await trio.sleep(delay)
            delay = min(2 * delay, _ACCEPT_RETRY_MAX_SECONDS)
            continue
        if failures:
            ctx.logs.control.warning(
                "accepting again after %d failed accept attempts in %.1f s",
                failures,
                trio.current_time() - started,
            )
            failures = 0
            delay = _ACCEPT_RETRY_SECONDS
        try:
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
        except OSError:
            conn.close()  # reset before its options could be set: it is gone already
            continue
        handlers.start_soon(serve_control, ctx, stream)
