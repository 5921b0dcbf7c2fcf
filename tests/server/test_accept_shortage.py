"""The accept loop out of descriptors, under trio's MockClock: one line, a backoff, one line.

accept_sessions runs here on a real loopback listener whose accept() fails with EMFILE while
the test says so (lowering this process's descriptor limit would starve pytest too). The
clock is frozen (rate 0) and moved in steps by the test: the retries are counted in mock
time, and the log is read after a long shortage, with no wall-clock window to watch.
"""

from __future__ import annotations

import errno
import re
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from ftpsup.server.accepting import accept_sessions
from ftpsup.server.context import InstanceContext
from tests.server.inprocess import anonymous_config, instance_context
from tests.server.log_lines import lines_of

TIMEOUT = 10
SHORTAGE_SECONDS = 10
STEP_SECONDS = 0.1
AGAIN = re.compile(r"accepting again after (\d+) failed accept attempts in ([\d.]+) s")


class ShortListener(socket.socket):
    """A listening socket whose accept() fails for want of descriptors while `short` is set."""

    short = False
    attempts = 0

    def accept(self) -> tuple[socket.socket, object]:
        if self.short:
            self.attempts += 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[InstanceContext]:
    config = anonymous_config(tmp_path, "accept")
    with instance_context(config) as ctx:
        yield ctx


@pytest.fixture
def logged(ctx: InstanceContext) -> Iterator[list[str]]:
    with lines_of(ctx.log) as lines:
        yield lines


async def test_a_shortage_logs_once_backs_off_and_logs_its_end(
    ctx: InstanceContext, mock_clock: trio.testing.MockClock, logged: list[str]
) -> None:
    listener = ShortListener(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    with listener:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_sessions, ctx, listener, nursery)
            await trio.testing.wait_all_tasks_blocked()
            listener.short = True
            # Queued in the kernel's backlog while accept() fails.
            waiting = socket.create_connection(listener.getsockname(), TIMEOUT)
            for _ in range(round(SHORTAGE_SECONDS / STEP_SECONDS)):
                await trio.testing.wait_all_tasks_blocked()
                mock_clock.jump(STEP_SECONDS)
            await trio.testing.wait_all_tasks_blocked()
            failed = [m for m in logged if m.startswith("accept failed")]
            assert failed == [
                "accept failed: Too many open files; new connections wait in the queue until"
                " it clears"
            ]
            # Doubling from 0.1 s up to 1 s: about one try a second, not ten.
            assert 8 <= listener.attempts <= 16, listener.attempts
            listener.short = False
            mock_clock.jump(1)
            await trio.testing.wait_all_tasks_blocked()
            with waiting:
                # The queued connection is served: its greeting has gone out already.
                assert select.select([waiting], [], [], 0)[0], "the queued client got nothing"
                assert waiting.recv(4096).startswith(b"220")
                again = [m for m in logged if AGAIN.fullmatch(m)]
                assert len(again) == 1, logged
                match = AGAIN.fullmatch(again[0])
                assert match is not None
                assert int(match[1]) == listener.attempts
                assert float(match[2]) >= SHORTAGE_SECONDS
            nursery.cancel_scope.cancel()
    assert len([m for m in logged if m.startswith("accept failed")]) == 1
