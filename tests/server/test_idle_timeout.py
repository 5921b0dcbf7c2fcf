"""The idle clock of serve_control against transfers, under trio's MockClock.

idle_session_timeout does not run while a transfer does (vsftpd's rule: a session moving data
is not idle), and it starts again, from zero, when the transfer ends. Sessions run in this
process on real loopback connections; the clock is frozen (rate 0), so an upload "outlasts"
the idle limit by a `jump` while its data connection is open, with no wall-clock wait.
"""

from __future__ import annotations

import select
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control
from tests.server.control_client import Client, passive_port, settle
from tests.server.inprocess import anonymous_config, instance_context

IDLE_TIMEOUT = 300
TIMEOUT = 10

Connect = Callable[[], Awaitable[Client]]


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[InstanceContext]:
    config = anonymous_config(
        tmp_path,
        "idle",
        write_enable=True,
        anon_upload_enable=True,
        idle_session_timeout=IDLE_TIMEOUT,
    )
    (tmp_path / "anon" / "up").mkdir()
    (tmp_path / "anon" / "up").chmod(0o777)
    with instance_context(config) as ctx:
        yield ctx


@pytest.fixture
async def connect(ctx: InstanceContext) -> AsyncIterator[Connect]:
    """Logged-in anonymous sessions of one instance, each served in process."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    streams: list[trio.SocketStream] = []
    async with trio.open_nursery() as nursery:

        async def new_client() -> Client:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            streams.append(stream)
            nursery.start_soon(serve_control, ctx, await listeners[0].accept())
            client = Client(stream)
            assert (await client.line()).startswith("220")
            assert (await client.command("USER anonymous")).startswith("331")
            assert (await client.command("PASS guest@")).startswith("230")
            return client

        yield new_client
        for stream in streams:
            await stream.aclose()
    for listener in listeners:
        await listener.aclose()


def readable_within(client: Client, seconds: float) -> bool:
    """Whether the server sends or closes something within `seconds` of real time."""
    ready, _, _ = select.select([client.stream.socket.fileno()], [], [], seconds)
    return bool(ready)


async def start_upload(client: Client, name: str) -> socket.socket:
    """STOR `name` over a passive connection left open: the transfer runs until it closes."""
    reply = await client.command("PASV")
    assert reply.startswith("227"), reply
    data = socket.create_connection(("127.0.0.1", passive_port(reply)), TIMEOUT)
    assert (await client.command(f"STOR {name}")).startswith("150")
    data.sendall(b"u" * 1024)
    return data


async def test_an_upload_is_not_cut_by_the_idle_clock_and_restarts_it_when_it_ends(
    connect: Connect, mock_clock: trio.testing.MockClock, ctx: InstanceContext
) -> None:
    busy = await connect()
    idle = await connect()
    data = await start_upload(busy, "up/slow.bin")
    await settle()
    # The upload runs three idle limits long; the other session sits idle all that time and
    # is cut when its own limit passes.
    mock_clock.jump(IDLE_TIMEOUT - 1)
    await settle()
    assert not idle.has_news()
    for _ in range(3):
        mock_clock.jump(IDLE_TIMEOUT - 1)
        await settle()
        assert not busy.has_news(), "a session with a transfer running was cut"
    assert await idle.news() == "421 Timeout."
    assert await idle.closed()
    data.sendall(b"u" * 1024)
    data.close()
    # A worker thread finishes the copy: a wait bounded by the wall clock (the mock clock
    # would never time it out), for an event, not a duration.
    assert await trio.to_thread.run_sync(readable_within, busy, TIMEOUT), "no 226"
    assert (await busy.line()).startswith("226")
    await settle()
    # The idle clock starts at the end of the transfer, not at the STOR.
    mock_clock.jump(IDLE_TIMEOUT - 1)
    await settle()
    assert not busy.has_news(), "the idle clock did not start over when the transfer ended"
    mock_clock.jump(2)
    await settle()
    assert await busy.news() == "421 Timeout."
    assert await busy.closed()
    assert ctx.config.anon_root is not None
    assert (ctx.config.anon_root / "up" / "slow.bin").read_bytes() == b"u" * 2048
