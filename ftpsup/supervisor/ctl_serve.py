"""The supervisor's side of the control socket (ctl.py): answer one JSON request per connection.

Apart from ctl.py, which the command line imports to ask the supervisor, because this side
runs on trio and a command such as `ftpsup status` should not load it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Awaitable, Callable

import trio

from ftpsup import jsonlines
from ftpsup.supervisor import ctl

Handler = Callable[[ctl.Request], Awaitable[ctl.Response]]


async def serve_control(
    sock: socket.socket, handle: Handler, after: Callable[[ctl.Request], None] | None = None
) -> None:
    """Answer requests on the bound control socket until cancelled.

    `after` is called with each request once its response has been sent.

    Cancellation: cancelling stops accepting; requests in progress are cancelled too.
    """
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    allowed = {0, os.geteuid()}

    async def one(stream: trio.SocketStream) -> None:
        async with stream:
            if ctl.peer_uid(stream.socket) not in allowed:
                return
            reader = jsonlines.LineReader(ctl.MAX_REQUEST)
            lines: list[bytes] = []
            with trio.move_on_after(10):
                while not lines and not reader.overflowed:
                    data = await stream.receive_some(ctl.MAX_REQUEST)
                    if not data:
                        break
                    lines = reader.feed(data)
            request: ctl.Request | None = None
            try:
                if reader.overflowed:
                    raise ValueError(f"longer than {ctl.MAX_REQUEST} bytes")
                request = ctl.parse_request(lines[0] if lines else reader.rest())
            except ValueError as exc:
                response = ctl.Response(False, (f"bad request: {exc}",))
            else:
                response = await handle(request)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(response.to_line())
            if after is not None and request is not None:
                after(request)

    await trio.serve_listeners(one, [listener])
