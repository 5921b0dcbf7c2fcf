"""A transfer's file is closed on every path, also when its session is cancelled early; a
command that fails with an internal error holds neither a file nor a passive port.

The session runs in this process (serve_control on a real loopback connection), so its open
files can be read from /proc/self/fd. The client stops reading its control connection and the
server's side of it is filled up, so the 150 that opens a RETR cannot go out: the session is
cancelled while it waits there, as an instance stop cuts a session.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from ftpsup.proto.session import verbs_data
from ftpsup.server import executor
from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control
from tests.server.control_client import Client, fill_send_buffer
from tests.server.inprocess import anonymous_config, fail_once, instance_context, wait_for


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[InstanceContext]:
    config = anonymous_config(tmp_path, "owner")
    with instance_context(config) as ctx:
        yield ctx


def descriptors_of(path: Path) -> list[int]:
    """This process's descriptors open on `path`."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed since the listing
        if target == str(path):
            found.append(int(name))
    return found


async def wait_until_blocked_on_the_opening_reply(ctx: InstanceContext, path: Path) -> None:
    """Wait until the file is open and the server only waits.

    The file is opened in a worker thread; once that thread has returned (no fs_limiter token
    out) and every task is blocked, the session is waiting for its 150 to go out.
    """
    await wait_for(
        lambda: descriptors_of(path) and ctx.fs_limiter.statistics().borrowed_tokens == 0,
        "the RETR opened its file",
    )


async def test_a_session_cancelled_while_its_150_waits_closes_the_file(
    ctx: InstanceContext, tmp_path: Path
) -> None:
    path = (tmp_path / "anon" / "file.bin").resolve()
    path.write_bytes(b"payload" * 1000)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = Client(await trio.open_tcp_stream("127.0.0.1", port))
    server_side = await listeners[0].accept()
    with trio.CancelScope() as session_scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_control, ctx, server_side)
            assert (await client.line()).startswith("220")
            assert (await client.command("USER anonymous")).startswith("331")
            assert (await client.command("PASS guest@")).startswith("230")
            assert (await client.command("PASV")).startswith("227")
            # From here on the client reads nothing: the server's next reply cannot leave.
            fill_send_buffer(server_side.socket.fileno())
            await client.stream.send_all(b"RETR file.bin\r\n")
            await wait_until_blocked_on_the_opening_reply(ctx, path)
            session_scope.cancel()
    await client.stream.aclose()
    for listener in listeners:
        await listener.aclose()
    leaked = descriptors_of(path)
    for fd in leaked:
        os.close(fd)  # not left to the rest of the test run
    assert leaked == [], "the cancelled RETR left its file open"


@asynccontextmanager
async def anonymous_session(ctx: InstanceContext) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """A session logged in as anonymous; yields a function that sends a command and returns
    the reply line. QUIT at the end."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = Client(await trio.open_tcp_stream("127.0.0.1", port))
    send = client.command
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_control, ctx, await listeners[0].accept())
            assert (await client.line()).startswith("220")
            assert (await send("USER anonymous")).startswith("331")
            assert (await send("PASS guest@")).startswith("230")
            yield send
            assert (await send("QUIT")).startswith("221")
    finally:
        await client.stream.aclose()
        for listener in listeners:
            await listener.aclose()


async def test_a_command_failing_after_its_file_was_opened_closes_the_file(
    ctx: InstanceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that stops a RETR between opening its file and its 150 (451) leaks nothing."""
    path = (tmp_path / "anon" / "file.bin").resolve()
    path.write_bytes(b"payload" * 1000)
    fail_once(monkeypatch, verbs_data, "_opening")
    async with anonymous_session(ctx) as send:
        assert (await send("PASV")).startswith("227")
        assert (await send("RETR file.bin")).startswith("451")
        # The session serves on, and the failed command holds nothing.
        assert (await send("NOOP")).startswith("200")
        leaked = descriptors_of(path)
    for fd in descriptors_of(path):
        os.close(fd)  # not left to the rest of the test run
    assert leaked == [], "the failed RETR left its file open"


async def test_a_pasv_failing_after_its_port_was_leased_gives_the_port_back(
    ctx: InstanceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug between leasing a passive port and its 227 (451) leaves no port held."""
    fail_once(monkeypatch, executor, "PassiveOpened")
    async with anonymous_session(ctx) as send:
        assert (await send("PASV")).startswith("451")
        # Nothing else would close it before the next PASV or the end of the session.
        held_after_failure = ctx.ports.leases_in_use()
        assert (await send("PASV")).startswith("227")
        held_after_pasv = ctx.ports.leases_in_use()
    assert held_after_failure == []
    assert len(held_after_pasv) == 1  # the control: a PASV that works holds its port
