"""tls_handshake_timeout for a client that never starts its handshake, under trio's MockClock.

A client that connects (implicit FTPS) or sends AUTH TLS (explicit) and then says nothing
waits on the event loop, on the trio clock, for its first handshake byte; the connection is
closed, without a word, when tls_handshake_timeout passes and not before. The session runs
in this process on a real loopback connection; the clock is frozen (rate 0) and moved by the
test. A handshake begun and then stalled waits in a thread on a socket timeout, the kernel's
clock: that case stays in tests/integration/test_tls_faults.py, without timing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from ftpsup.config.schema import InstanceConfig
from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control
from ftpsup.tls.certs import write_self_signed
from tests.server.control_client import Client, settle
from tests.server.inprocess import instance_context, wait_for
from tests.server.log_lines import lines_of

HANDSHAKE_TIMEOUT = 20
# Later than the handshake's by default: a test must see the handshake's own clock.
LOGIN_TIMEOUT = 60
FAILED = "no TLS handshake within tls_handshake_timeout"


@attrs.frozen
class Timeouts:
    handshake: int = HANDSHAKE_TIMEOUT
    login: int = LOGIN_TIMEOUT


@pytest.fixture
def timeouts() -> Timeouts:
    """The instance's clocks; a test parametrizes this name to set others."""
    return Timeouts()


@pytest.fixture(params=["explicit", "implicit"])
def ctx(
    request: pytest.FixtureRequest, tmp_path: Path, timeouts: Timeouts
) -> Iterator[InstanceContext]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ("localhost", "127.0.0.1"), days=30)
    config = InstanceConfig(
        name="handshake",
        source=tmp_path / "handshake.toml",
        config_dir=tmp_path,
        state_dir=tmp_path / "run",
        log_dir=tmp_path / "log",
        ssl_enable=True,
        implicit_ssl=request.param == "implicit",
        rsa_cert_file=cert,
        rsa_private_key_file=key,
        login_timeout=timeouts.login,
        tls_handshake_timeout=timeouts.handshake,
    )
    with instance_context(config) as ctx:
        yield ctx


@pytest.fixture
def logged(ctx: InstanceContext) -> Iterator[list[str]]:
    with lines_of(ctx.log) as lines:
        yield lines


@pytest.fixture
async def client(ctx: InstanceContext) -> AsyncIterator[Client]:
    """A client at the point where the server waits for its ClientHello."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        accepted = await listeners[0].accept()
        before = waiting_to_read()
        nursery.start_soon(serve_control, ctx, accepted)
        c = Client(stream)
        if not ctx.config.implicit_ssl:
            assert (await c.line()).startswith("220")
            assert (await c.command("AUTH TLS")).startswith("234")
        await wait_for_the_hello_wait(before)
        yield c
        await stream.aclose()
    for listener in listeners:
        await listener.aclose()


def waiting_to_read() -> int:
    """How many of this loop's tasks wait for a descriptor to become readable."""
    stats = trio.lowlevel.current_statistics().io_statistics
    return int(getattr(stats, "tasks_waiting_read", 0))


async def wait_for_the_hello_wait(before: int) -> None:
    """Wait until the server waits to read the client's first byte.

    The TLS context is loaded in a worker thread first, and a task waiting for a thread counts
    as blocked: the server's clock is armed only once one more task of this loop than
    `before` (counted before the session started) waits to read. The test's client reads
    nothing while the server waits (it checks with select), so that task is the session's.
    """
    await wait_for(lambda: waiting_to_read() > before, "the server waits for a ClientHello")


async def test_a_client_that_never_starts_its_handshake_is_cut_at_the_timeout_not_before(
    client: Client, mock_clock: trio.testing.MockClock, logged: list[str]
) -> None:
    mock_clock.jump(HANDSHAKE_TIMEOUT - 0.5)
    await settle()
    assert not client.has_news(), "cut before tls_handshake_timeout"
    mock_clock.jump(1)
    await settle()
    assert await client.closed(), "still open after tls_handshake_timeout"
    assert f"TLS handshake with 127.0.0.1 failed: {FAILED}" in logged


@pytest.mark.parametrize("timeouts", [Timeouts(handshake=60, login=20)])
async def test_the_login_clock_cuts_a_silent_handshake_when_it_comes_first(
    client: Client, mock_clock: trio.testing.MockClock, logged: list[str]
) -> None:
    # The login clock runs from accept, through the handshake; nothing goes out in clear text
    # (the client expects TLS records).
    mock_clock.jump(20 - 0.5)
    await settle()
    assert not client.has_news(), "cut before login_timeout"
    mock_clock.jump(1)
    await settle()
    assert await client.closed(), "still open after login_timeout"
    assert "no login from 127.0.0.1 within login_timeout (20 s); closing" in logged
