"""Passive data endpoints (ftpsup.server.data) over real loopback sockets."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from ftpsup.ports import PortAllocator
from ftpsup.server.data import PassiveEndpoint, accept_data, open_passive

# A range of its own, away from the integration tests' passive range (30100-30199); a port
# some other program holds is skipped by the lease.
PASV_MIN, PASV_MAX = 39100, 39199
LOG = logging.getLogger("ftpsup.test-data")


@pytest.fixture
async def endpoint(tmp_path: Path) -> AsyncIterator[PassiveEndpoint]:
    allocator = PortAllocator(tmp_path / "ports", PASV_MIN, PASV_MAX, owner="test")
    opened = await open_passive(
        allocator, socket.AF_INET, "127.0.0.1", trio.CapacityLimiter(1), inline_leases=True
    )
    assert isinstance(opened, PassiveEndpoint)
    yield opened
    opened.close()


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    client = socket.socket()
    client.bind((source, 0))
    client.connect(("127.0.0.1", port))  # loopback: the handshake is done when this returns
    return client


async def test_a_data_connection_already_waiting_is_taken_without_waiting(
    endpoint: PassiveEndpoint,
) -> None:
    # No wait and so no timeout: even a zero accept_timeout takes the waiting client.
    with _connect(endpoint.port) as client:
        conn = await accept_data(
            endpoint, "127.0.0.1", promiscuous=False, accept_seconds=0, log=LOG
        )
        with conn:
            assert conn.getblocking() is False
            client.sendall(b"ping")
            await trio.lowlevel.wait_readable(conn)
            assert conn.recv(16) == b"ping"


async def test_a_connection_from_another_address_is_refused_and_the_client_taken(
    endpoint: PassiveEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    with _connect(endpoint.port, "127.0.0.2") as thief, _connect(endpoint.port) as client:
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            conn = await accept_data(
                endpoint, "127.0.0.1", promiscuous=False, accept_seconds=10, log=LOG
            )
        with conn:
            assert conn.getpeername() == client.getsockname()
        assert thief.recv(16) == b""  # closed by the server
    assert "from 127.0.0.2 refused: control connection is from 127.0.0.1" in caplog.text


async def test_nobody_connecting_times_out(
    endpoint: PassiveEndpoint, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(trio.TooSlowError):
        await accept_data(endpoint, "127.0.0.1", promiscuous=False, accept_seconds=30, log=LOG)


async def test_closing_the_endpoint_wakes_its_waiting_accept(endpoint: PassiveEndpoint) -> None:
    failed: list[BaseException] = []

    async def waiter() -> None:
        try:
            await accept_data(endpoint, "127.0.0.1", promiscuous=False, accept_seconds=60, log=LOG)
        except trio.ClosedResourceError as exc:
            failed.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            endpoint.close()
    assert len(failed) == 1
    assert not endpoint.lease.held


async def test_a_cancelled_accept_takes_no_connection(endpoint: PassiveEndpoint) -> None:
    # ABOR before the transfer task ran: the waiting client is left alone.
    with _connect(endpoint.port), trio.CancelScope() as scope:
        scope.cancel()
        await accept_data(endpoint, "127.0.0.1", promiscuous=False, accept_seconds=10, log=LOG)
    assert scope.cancelled_caught
    conn, _ = endpoint.sock.accept()  # the connection is still queued
    conn.close()
