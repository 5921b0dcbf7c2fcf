"""The login clock of serve_control under trio's MockClock: time moves only when told to.

A real loopback connection carries the commands; the clock is frozen (rate 0), so nothing
times out while the test reads and writes, and `jump` puts the session just before or just
past its deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from ftpsup.server import executor
from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control
from tests.server.control_client import Client, fill_send_buffer, settle
from tests.server.inprocess import anonymous_config, fail_once, instance_context

LOGIN_TIMEOUT = 30
IDLE_TIMEOUT = 300


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[InstanceContext]:
    config = anonymous_config(
        tmp_path, "clock", login_timeout=LOGIN_TIMEOUT, idle_session_timeout=IDLE_TIMEOUT
    )
    with instance_context(config) as ctx:
        yield ctx


@pytest.fixture
async def client(ctx: InstanceContext) -> AsyncIterator[Client]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        nursery.start_soon(serve_control, ctx, await listeners[0].accept())
        c = Client(stream)
        assert (await c.line()).startswith("220")
        yield c
        await stream.aclose()
    for listener in listeners:
        await listener.aclose()


async def test_a_connection_without_login_is_cut_at_the_deadline_not_before(
    client: Client, mock_clock: trio.testing.MockClock
) -> None:
    assert await client.command("USER anonymous") == "331 Please specify the password."
    await settle()
    mock_clock.jump(LOGIN_TIMEOUT - 0.5)
    await settle()
    assert not client.has_news()
    assert (await client.command("NOOP")).startswith("200"), "commands do not restart it"
    await settle()
    mock_clock.jump(1)
    await settle()
    assert await client.news() == (
        f"421 Login timeout ({LOGIN_TIMEOUT} seconds): closing control connection."
    )
    assert await client.closed()


async def test_a_login_stops_the_clock(client: Client, mock_clock: trio.testing.MockClock) -> None:
    assert (await client.command("USER anonymous")).startswith("331")
    assert (await client.command("PASS guest@")).startswith("230")
    await settle()
    mock_clock.jump(IDLE_TIMEOUT - 1)
    await settle()
    assert not client.has_news()
    assert (await client.command("NOOP")).startswith("200")


async def test_rein_restarts_the_clock_from_the_rein(
    client: Client, mock_clock: trio.testing.MockClock
) -> None:
    assert (await client.command("USER anonymous")).startswith("331")
    assert (await client.command("PASS guest@")).startswith("230")
    await settle()
    mock_clock.jump(LOGIN_TIMEOUT * 3)
    assert (await client.command("REIN")).startswith("220")
    await settle()
    mock_clock.jump(LOGIN_TIMEOUT - 1)
    await settle()
    assert not client.has_news()
    await settle()
    mock_clock.jump(2)
    await settle()
    assert (await client.news()).startswith("421 Login timeout")
    assert await client.closed()


async def test_the_idle_timeout_still_applies_once_logged_in(
    client: Client, mock_clock: trio.testing.MockClock
) -> None:
    assert (await client.command("USER anonymous")).startswith("331")
    assert (await client.command("PASS guest@")).startswith("230")
    await settle()
    mock_clock.jump(IDLE_TIMEOUT + 1)
    await settle()
    assert await client.news() == "421 Timeout."


async def test_a_client_that_reads_no_replies_is_dropped_at_the_idle_timeout(
    ctx: InstanceContext, mock_clock: trio.testing.MockClock
) -> None:
    """Its replies cannot go out; at the idle timeout the session ends, without waiting again
    for a 421 that could not go out either."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        port = listeners[0].socket.getsockname()[1]
        c = Client(await trio.open_tcp_stream("127.0.0.1", port))
        server_side = await listeners[0].accept()
        nursery.start_soon(serve_control, ctx, server_side)
        assert (await c.line()).startswith("220")
        assert (await c.command("USER anonymous")).startswith("331")
        assert (await c.command("PASS guest@")).startswith("230")
        # From here the client reads nothing: the server's side of the connection fills up.
        fill_send_buffer(server_side.socket.fileno())
        await c.stream.send_all(b"NOOP\r\n")
        await settle()
        assert ctx.sessions == 1
        mock_clock.jump(IDLE_TIMEOUT + 1)
        await settle()
        assert ctx.sessions == 0, "the session still waits to send its replies"
        await c.stream.aclose()
    for listener in listeners:
        await listener.aclose()


async def test_a_login_failing_after_its_check_leaves_the_client_out_and_the_clock_running(
    client: Client, mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug between the password check and the 230 (451): the client may simply log in again,
    and until it does, the login clock runs."""
    fail_once(monkeypatch, executor, "log_login")
    assert (await client.command("USER anonymous")).startswith("331")
    assert (await client.command("PASS guest@")).startswith("451")
    assert (await client.command("USER anonymous")).startswith("331")
    await settle()
    mock_clock.jump(LOGIN_TIMEOUT + 1)
    await settle()
    assert (await client.news()).startswith("421 Login timeout")
