"""The executor of serve_control, in process over real loopback sockets: how replies go out.

Replies to commands a client pipelines in one packet go out in one write; a command that needs
I/O is answered in order with those around it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control
from tests.server.inprocess import anonymous_config, instance_context


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[InstanceContext]:
    config = anonymous_config(tmp_path, "executor")
    (tmp_path / "anon" / "sub").mkdir()
    with instance_context(config) as ctx:
        yield ctx


@pytest.fixture
async def control(ctx: InstanceContext) -> AsyncIterator[trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        nursery.start_soon(serve_control, ctx, await listeners[0].accept())
        yield stream
        await stream.aclose()
    for listener in listeners:
        await listener.aclose()


async def read_lines(stream: trio.SocketStream, count: int) -> list[str]:
    data = b""
    with trio.fail_after(10):
        while data.count(b"\r\n") < count:
            chunk = await stream.receive_some(65536)
            assert chunk, f"closed after {data!r}"
            data += chunk
    return data.decode().split("\r\n")[:count]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every os.write to a socket: the session's writes to its control connection."""
    seen: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):  # not the log files
            seen.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    return seen


async def test_pipelined_commands_are_answered_in_one_write(
    control: trio.SocketStream, writes: list[bytes]
) -> None:
    assert (await read_lines(control, 1))[0].startswith("220")
    await control.send_all(b"USER anonymous\r\nPASS guest@\r\n")
    assert [line[:3] for line in await read_lines(control, 2)] == ["331", "230"]
    writes.clear()
    await control.send_all(b"TYPE I\r\nPWD\r\nNOOP\r\nSYST\r\n")
    lines = await read_lines(control, 4)
    assert [line[:3] for line in lines] == ["200", "257", "200", "215"]
    assert len(writes) == 1, writes


async def test_a_command_needing_io_keeps_its_place_among_pipelined_ones(
    control: trio.SocketStream, writes: list[bytes]
) -> None:
    assert (await read_lines(control, 1))[0].startswith("220")
    await control.send_all(b"USER anonymous\r\nPASS guest@\r\nNOOP\r\nCWD sub\r\nPWD\r\nCWD /x\r\n")
    lines = await read_lines(control, 6)
    assert [line[:3] for line in lines] == ["331", "230", "200", "250", "257", "550"]
    assert lines[4] == '257 "/sub" is the current directory'
