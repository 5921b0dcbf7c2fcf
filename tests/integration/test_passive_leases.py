"""Passive-port leases of a real ftpsup instance: every leased port comes back on every path a
session can take, and a full range answers 425.

The passive range is two ports, so one leaked lease shows up within a round as a 425; the
lease files are checked too, through the same PortAllocator the server uses.
"""

from __future__ import annotations

import ftplib
import os
import random
import re
import socket
import struct
from collections.abc import Callable

import attrs
import pytest

from ftpsup.ports import PortAllocator
from tests.integration.raw_ftp import send_line as send
from tests.integration.resource_checks import TIMEOUT, enter_passive, transfer
from tests.integration.servers import HOSTS, Server, wait_until

ServerFactory = Callable[..., Server]


# Two-port passive ranges are drawn from here (above the shared fixture's 30100-30299, below
# the kernel's ephemeral ports), so two test runs on one machine are unlikely to collide.
PAIR_FLOOR, PAIR_CEILING = 30300, 32700
ROUNDS = 20


@attrs.define
class Leases:
    """The server's two-port passive range, seen from the client and from the lease files."""

    srv: Server
    allocator: PortAllocator
    ports: tuple[int, int]
    seen: list[int] = attrs.field(factory=list)

    @property
    def ipv6(self) -> bool:
        return ":" in self.srv.host

    def enter_passive(self, ftp: ftplib.FTP, verb: str | None = None) -> tuple[str, int | None]:
        reply, port = enter_passive(ftp, verb, self.ports)
        if port is not None:
            self.seen.append(port)
        return reply, port

    def port(self, ftp: ftplib.FTP, verb: str | None = None) -> int:
        reply, port = self.enter_passive(ftp, verb)
        assert port is not None, reply
        return port

    def in_use(self) -> list[int]:
        return [port for port, _ in self.allocator.leases_in_use()]

    def wait_in_use(self, expected: list[int], what: str) -> None:
        wait_until(lambda: self.in_use() == expected, f"leases {expected} after {what}")

    def transfer(self, ftp: ftplib.FTP, command: str, verb: str | None = None) -> tuple[str, bytes]:
        return transfer(ftp, self.srv.host, self.port(ftp, verb), command)


def free_pair(host: str) -> tuple[int, int]:
    """Two consecutive ports nobody listens on at `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        lo = random.randrange(PAIR_FLOOR, PAIR_CEILING, 2)
        try:
            for port in (lo, lo + 1):
                with socket.socket(family) as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        return lo, lo + 1
    raise AssertionError("no two free consecutive ports")


@pytest.fixture(params=HOSTS, ids=["ipv4", "ipv6"])
def leases(request: pytest.FixtureRequest, server_factory: ServerFactory) -> Leases:
    lo, hi = free_pair(request.param)
    srv = server_factory(request.param, pasv_min_port=lo, pasv_max_port=hi)
    allocator = PortAllocator(srv.home.parent.parent / "run" / "ports", lo, hi, owner="test")
    return Leases(srv, allocator, (lo, hi))


def _one_round(leases: Leases, ftp: ftplib.FTP, payload: bytes) -> None:
    srv = leases.srv
    # PASV + RETR that succeeds.
    reply, data = leases.transfer(ftp, "RETR data.bin")
    assert reply.startswith("226")
    assert data == payload
    leases.wait_in_use([], "RETR")
    # PASV + RETR of a missing file, then PASV again: only the new port stays leased.
    assert leases.transfer(ftp, "RETR missing.bin")[0].startswith("550")
    port = leases.port(ftp)
    leases.wait_in_use([port], "RETR of a missing file and a new PASV")
    # PASV + ABOR: ABOR with no transfer drops the passive endpoint.
    leases.port(ftp)
    assert send(ftp, "ABOR").startswith("225")
    leases.wait_in_use([], "ABOR")
    # EPSV + LIST.
    reply, data = leases.transfer(ftp, "LIST", "EPSV")
    assert reply.startswith("226")
    assert b"data.bin" in data
    leases.wait_in_use([], "EPSV + LIST")
    # PASV + STOR cut off by a reset of the data connection.
    port = leases.port(ftp)
    conn = socket.create_connection((srv.host, port), TIMEOUT)
    assert send(ftp, "STOR cut.bin").startswith("150")
    conn.sendall(b"x" * 65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    assert ftp.getmultiline().startswith("426")
    leases.wait_in_use([], "STOR cut short")
    # PASV then QUIT, in a session of its own.
    with srv.connect(timeout=TIMEOUT) as other:
        leases.port(other)
        assert send(other, "QUIT").startswith("221")
    leases.wait_in_use([], "QUIT")
    # PASV then the control connection dropped without QUIT.
    other = srv.connect(timeout=TIMEOUT)
    leases.port(other)
    other.close()
    leases.wait_in_use([], "a dropped control connection")


@pytest.mark.slow
def test_every_leased_passive_port_is_returned_on_every_path(leases: Leases) -> None:
    payload = os.urandom(100_000)
    (leases.srv.home / "data.bin").write_bytes(payload)
    with leases.srv.connect(timeout=TIMEOUT) as ftp:
        for _ in range(ROUNDS):
            _one_round(leases, ftp, payload)
    leases.wait_in_use([], "every session closed")
    # The range still has both ports: two sessions get one each, a third gets 425.
    first, second, third = (leases.srv.connect(timeout=TIMEOUT) for _ in range(3))
    with first, second, third:
        port_1, port_2 = leases.port(first), leases.port(second)
        assert {port_1, port_2} == set(leases.ports)
        assert leases.enter_passive(third)[0].startswith("425")
        assert send(first, "QUIT").startswith("221")
        leases.wait_in_use([port_2], "QUIT of the first session")
        assert leases.port(third) == port_1
    leases.wait_in_use([], "all sessions closed")
    assert set(leases.seen) == set(leases.ports)


def test_a_full_range_answers_425_naming_no_port(leases: Leases) -> None:
    with leases.srv.connect(timeout=TIMEOUT) as a, leases.srv.connect(timeout=TIMEOUT) as b:
        leases.port(a)
        leases.port(b)
        with leases.srv.connect(timeout=TIMEOUT) as c:
            for verb in ("EPSV",) if leases.ipv6 else ("PASV", "EPSV"):
                reply, _ = leases.enter_passive(c, verb)
                assert reply.startswith("425")
                assert not re.search(r"\d", reply[3:]), reply
            assert send(c, "NOOP").startswith("200"), "a 425 does not end the session"
