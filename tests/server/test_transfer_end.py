"""The end of a transfer, in process over real loopback sockets: what follows its final reply.

The transfer's task gives its final reply (226) and releases the transfer's resources. When
that reply cannot go out at once (a TLS control connection, or a client slow to read), the
control loop serves the next command meanwhile; that command must find the session as the
state machine does: no transfer running, nothing of the old transfer left to release.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from ftpsup.proto.session.state import DataSetup
from ftpsup.server import control
from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control
from ftpsup.server.session import Session
from tests.server.control_client import Client, fill_send_buffer, passive_port
from tests.server.inprocess import anonymous_config, instance_context, wait_for

WAIT_SECONDS = 10
PAYLOAD = b"payload" * 1000


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[InstanceContext]:
    config = anonymous_config(tmp_path, "ending")
    (tmp_path / "anon" / "file.bin").write_bytes(PAYLOAD)
    with instance_context(config) as ctx:
        yield ctx


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[Session]:
    """Every Session serve_control makes, so a test can wait on its state."""
    made: list[Session] = []

    def recording(**kwargs: Any) -> Session:
        made.append(Session(**kwargs))
        return made[-1]

    monkeypatch.setattr(control, "Session", recording)
    return made


async def download(port: int) -> bytes:
    with trio.fail_after(WAIT_SECONDS):
        data = await trio.open_tcp_stream("127.0.0.1", port)
        received = bytearray()
        while chunk := await data.receive_some(65536):
            received += chunk
        await data.aclose()
    return bytes(received)


async def test_a_pasv_served_while_a_final_reply_waits_keeps_its_port(
    ctx: InstanceContext, sessions: list[Session]
) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = Client(await trio.open_tcp_stream("127.0.0.1", port))
    server_side = await listeners[0].accept()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_control, ctx, server_side)
        assert (await client.line()).startswith("220")
        assert (await client.command("USER anonymous")).startswith("331")
        assert (await client.command("PASS guest@")).startswith("230")
        first = passive_port(await client.command("PASV"))
        assert (await client.command("RETR file.bin")).startswith("150")
        # From here the client reads nothing of the control connection for a while: the
        # transfer's 226 cannot go out, and waits in the transfer's task.
        junk = fill_send_buffer(server_side.socket.fileno())
        assert await download(first) == PAYLOAD
        session = sessions[0]
        await wait_for(lambda: session.machine.state.transfer is None, "the transfer ended")
        # The state machine knows the transfer is over: PASV runs at once, a new port.
        await client.stream.send_all(b"PASV\r\n")
        await wait_for(
            lambda: session.machine.state.data_setup is DataSetup.PASSIVE, "PASV was served"
        )
        await client.skip(junk)
        assert (await client.line()).startswith("226")
        second = passive_port(await client.line())
        # The port the 227 named still listens, and serves the next transfer.
        assert (await client.command("RETR file.bin")).startswith("150")
        assert await download(second) == PAYLOAD
        assert (await client.line()).startswith("226")
        assert (await client.command("QUIT")).startswith("221")
    await client.stream.aclose()
    for listener in listeners:
        await listener.aclose()
