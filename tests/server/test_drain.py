"""The drain on stop, under trio's MockClock: an instance in process, time moved by the test.

serve_instance runs here on a loopback listener with a status channel; closing the
supervisor's end of that channel stops the instance as the supervisor's exit does. The clock
is frozen (rate 0): a session is alive just before stopwaitsecs and cut just after it, with
no wall-clock wait.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from ftpsup.config.schema import InstanceConfig
from ftpsup.server.context import InstanceContext
from ftpsup.server.instance import serve_instance
from tests.server.inprocess import anonymous_config, logging_restored

STOPWAITSECS = 20


@pytest.fixture
def config(tmp_path: Path) -> Iterator[InstanceConfig]:
    with logging_restored():
        yield anonymous_config(tmp_path, "drain", stopwaitsecs=STOPWAITSECS)


async def _line(stream: trio.SocketStream, buffer: bytearray) -> str:
    while b"\r\n" not in buffer:
        data = await stream.receive_some(4096)
        if not data:
            return ""
        buffer += data
    line, _, rest = bytes(buffer).partition(b"\r\n")
    buffer[:] = rest
    return line.decode()


async def test_stop_lets_a_session_finish_within_stopwaitsecs_then_cuts_it(
    config: InstanceConfig, mock_clock: trio.testing.MockClock
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    supervisor_end, instance_end = socket.socketpair()
    async with trio.open_nursery() as nursery:
        ctx: InstanceContext = await nursery.start(
            lambda task_status: serve_instance(
                config, listener, status_fd=instance_end.detach(), task_status=task_status
            )
        )
        client = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = bytearray()
        assert (await _line(client, buffer)).startswith("220")
        await trio.testing.wait_all_tasks_blocked()
        assert ctx.sessions == 1
        supervisor_end.close()  # the supervisor has gone: stop, and drain
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(STOPWAITSECS - 1)
        await trio.testing.wait_all_tasks_blocked()
        await client.send_all(b"NOOP\r\n")
        assert await _line(client, buffer) == "200 NOOP ok.", "cut before stopwaitsecs"
        with pytest.raises(ConnectionRefusedError):  # nothing listens any more
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(2)
        await trio.testing.wait_all_tasks_blocked()
        # Checked without waiting: the frozen clock would never time a read out.
        readable, _, _ = select.select([client.socket.fileno()], [], [], 0)
        assert readable, "the session outlived stopwaitsecs"
        assert await _line(client, buffer) == ""
        await client.aclose()
    assert ctx.sessions == 0
