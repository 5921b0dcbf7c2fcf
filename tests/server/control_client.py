"""A client of an in-process session (serve_control) on a real loopback connection.

`Client` reads reply lines and sends commands; `settle` waits until the server waits too;
`fill_send_buffer` makes the server's side of a connection full, as a client that stops
reading does. Under a frozen MockClock the `fail_after` in `line` never fires (a test that
jumps the clock knows which replies are due); on the real clock it bounds every read.
"""

from __future__ import annotations

import os
import select

import attrs
import trio
import trio.testing

WAIT_SECONDS = 10
# Bounds the filling of a send buffer (loopback buffers hold a few MiB at most).
FILL_LIMIT = 64 * 1024 * 1024


@attrs.define
class Client:
    stream: trio.SocketStream
    buffer: bytearray = attrs.field(factory=bytearray)

    async def line(self) -> str:
        """The next reply line."""
        with trio.fail_after(WAIT_SECONDS):
            while b"\r\n" not in self.buffer:
                data = await self.stream.receive_some(4096)
                if not data:
                    raise EOFError("the server closed the connection")
                self.buffer += data
        line, _, rest = bytes(self.buffer).partition(b"\r\n")
        self.buffer[:] = rest
        return line.decode()

    async def command(self, text: str) -> str:
        await self.stream.send_all(text.encode() + b"\r\n")
        return await self.line()

    async def skip(self, count: int) -> None:
        """Read and drop `count` bytes (what the test wrote into the server's socket)."""
        with trio.fail_after(WAIT_SECONDS):
            while len(self.buffer) < count:
                data = await self.stream.receive_some(1 << 20)
                if not data:
                    raise EOFError("the server closed the connection")
                self.buffer += data
        del self.buffer[:count]

    def has_news(self) -> bool:
        """Whether the server sent or closed anything (checked without waiting)."""
        readable, _, _ = select.select([self.stream.socket.fileno()], [], [], 0)
        return bool(self.buffer) or bool(readable)

    async def news(self) -> str:
        """A line the server has sent already, or AssertionError (never a wait)."""
        assert self.has_news(), "the server has sent nothing"
        return await self.line()

    async def closed(self) -> bool:
        """Whether the server has closed the connection already (never a wait)."""
        return self.has_news() and await self.stream.receive_some(4096) == b""


async def settle() -> None:
    """Wait until the server waits too: its clocks are armed, its replies sent."""
    await trio.testing.wait_all_tasks_blocked()


def fill_send_buffer(fd: int) -> int:
    """Write to the socket `fd` until it takes no more; returns how many bytes it took."""
    junk = b"x" * 65536
    written = 0
    while written < FILL_LIMIT:
        try:
            written += os.write(fd, junk)
        except BlockingIOError:
            return written
    raise AssertionError("the send buffer never filled")


def passive_port(reply: str) -> int:
    """The port of a 227 reply."""
    numbers = reply[reply.index("(") + 1 : reply.index(")")].split(",")
    return int(numbers[4]) * 256 + int(numbers[5])
