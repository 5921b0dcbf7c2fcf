"""Resources of a real ftpsup instance: passive-port leases, connection limits, a full disk,
idle sessions.

The passive range is two ports, so one leaked lease shows up within a round as a 425; the
lease files are checked too, through the same PortAllocator the server uses.
"""

from __future__ import annotations

import ftplib
import hashlib
import os
import random
import re
import select
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from ftpsup.ports import PortAllocator
from tests.integration.conftest import HOSTS, Server, wait_until

ServerFactory = Callable[..., Server]

# Two-port passive ranges are drawn from here (above the shared fixture's 30100-30299, below
# the kernel's ephemeral ports), so two test runs on one machine are unlikely to collide.
PAIR_FLOOR, PAIR_CEILING = 30300, 32700
ROUNDS = 20
TIMEOUT = 10


def send(ftp: ftplib.FTP, line: str) -> str:
    """Send one command and return the whole reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(TIMEOUT)
    return b"".join(iter(lambda: sock.recv(65536), b""))


def enter_passive(
    ftp: ftplib.FTP, verb: str | None = None, port_range: tuple[int, int] = (1024, 65535)
) -> tuple[str, int | None]:
    """PASV (EPSV on IPv6): the reply and its port, after checking any port named is in range."""
    assert ftp.sock is not None
    verb = verb or ("EPSV" if ftp.sock.family == socket.AF_INET6 else "PASV")
    reply = send(ftp, verb)
    lo, hi = port_range
    if reply.startswith("227"):
        port = ftplib.parse227(reply)[1]
    elif reply.startswith("229"):
        port = ftplib.parse229(reply, ftp.sock.getpeername())[1]
    else:
        assert reply.startswith("425"), reply
        # A 425 must not point the client at some other port.
        numbers = [int(n) for n in re.findall(r"\d+", reply[3:])]
        assert all(lo <= n <= hi for n in numbers), reply
        return reply, None
    assert lo <= port <= hi, reply
    return reply, port


def passive_port(ftp: ftplib.FTP, verb: str | None = None) -> int:
    reply, port = enter_passive(ftp, verb)
    assert port is not None, reply
    return port


def transfer(ftp: ftplib.FTP, host: str, port: int, command: str) -> tuple[str, bytes]:
    """`command` over the passive data connection at `port`, read to its end."""
    with socket.create_connection((host, port), TIMEOUT) as conn:
        reply = send(ftp, command)
        if not reply.startswith("150"):
            return reply, b""
        data = read_all(conn)
    return ftp.getmultiline(), data


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


# -- connection limits -----------------------------------------------------------------------


def _greeting(host: str, port: int, source: str | None = None) -> tuple[ftplib.FTP, str]:
    ftp = ftplib.FTP(timeout=TIMEOUT, source_address=(source, 0) if source else None)
    try:
        return ftp, ftp.connect(host, port)
    except ftplib.error_temp as exc:
        ftp.close()
        return ftp, str(exc)


def test_max_clients_refuses_the_extra_connection_with_421(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1", max_clients=2)
    (srv.home / "f.txt").write_bytes(b"still here")
    with srv.connect(timeout=TIMEOUT) as a, srv.connect(timeout=TIMEOUT) as b:
        _, reply = _greeting(srv.host, srv.port)
        assert reply == "421 There are too many connected users, please try later."
        assert send(a, "NOOP").startswith("200")
        assert b.nlst() == ["f.txt"]
        assert send(a, "QUIT").startswith("221")

        def third_admitted() -> bool:
            ftp, reply = _greeting(srv.host, srv.port)
            ftp.close()
            return reply.startswith("220")

        wait_until(third_admitted, "a free slot after QUIT")
        assert send(b, "NOOP").startswith("200")


def test_max_per_ip_refuses_a_second_connection_from_one_address(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1", max_per_ip=1)
    with srv.connect(timeout=TIMEOUT) as a:
        _, reply = _greeting(srv.host, srv.port)
        assert reply == "421 There are too many connections from your internet address."
        other, reply = _greeting(srv.host, srv.port, source="127.0.0.2")
        with other:
            assert reply.startswith("220")
            assert other.login(srv.user, srv.password).startswith("230")
        assert send(a, "NOOP").startswith("200")


# -- a full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_disk(server: Server, workdir: str) -> Iterator[Path]:
    """A 2 MB tmpfs mounted on a directory of alice's home."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = server.home / workdir.lstrip("/") / "small"
    path.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mount.stderr.strip()}")
    try:
        yield path
    finally:
        result = subprocess.run(["umount", str(path)], capture_output=True, timeout=30, check=False)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], timeout=30, check=True)


def test_stor_onto_a_full_disk_replies_452_and_the_session_lives(
    server: Server, workdir: str, small_disk: Path
) -> None:
    keep = os.urandom(100_000)
    (small_disk / "keep.bin").write_bytes(keep)
    beside = server.home / workdir.lstrip("/") / "beside.bin"
    beside.write_bytes(keep)
    with server.connect(timeout=TIMEOUT) as ftp:
        ftp.cwd(workdir)
        port = passive_port(ftp)
        with socket.create_connection((server.host, port), TIMEOUT) as conn:
            assert send(ftp, "STOR small/big.bin").startswith("150")
            chunk = b"z" * 65536
            try:
                for _ in range(5 * 1024 * 1024 // len(chunk)):
                    conn.sendall(chunk)
            except OSError:
                pass  # the server closed the data connection when the disk filled
        assert ftp.getmultiline().startswith("452")
        assert send(ftp, "NOOP").startswith("200")
        assert send(ftp, "DELE small/big.bin").startswith("250")
        reply, names = transfer(ftp, server.host, passive_port(ftp), "NLST small")
        assert reply.startswith("226")
        assert names.split() == [b"keep.bin"]
    assert (
        hashlib.sha256((small_disk / "keep.bin").read_bytes()).digest()
        == hashlib.sha256(keep).digest()
    )
    assert beside.read_bytes() == keep
    assert sorted(os.listdir(small_disk)) == ["keep.bin"]
    assert shutil.disk_usage(small_disk).free > 1024 * 1024


# -- idle sessions -----------------------------------------------------------------------------


def test_an_idle_session_of_a_real_instance_gets_421_and_is_closed(
    server_factory: ServerFactory,
) -> None:
    # The config key reaches the server process and its clock fires; when the clock runs, and
    # that a transfer holds it off and restarts it, is tests/server/test_idle_timeout.py's
    # (trio's MockClock, no wall-clock pacing).
    srv = server_factory("127.0.0.1", idle_session_timeout=1)
    with srv.connect(timeout=TIMEOUT) as client:
        assert client.sock is not None
        assert select.select([client.sock], [], [], TIMEOUT)[0], "no 421 within the timeout"
        assert client.getmultiline() == "421 Timeout."
        with pytest.raises(EOFError):
            client.getmultiline()


def test_a_client_streaming_without_line_ends_does_not_stall_other_sessions(
    server_factory: ServerFactory,
) -> None:
    # Every NOOP of the other session is answered while the flood still runs: a server that
    # starved the others would leave a NOOP unanswered until its socket timeout (the flood
    # goes on until the NOOPs are done, so it cannot end first and let them through).
    srv = server_factory("127.0.0.1")
    flooder = socket.create_connection((srv.host, srv.port), TIMEOUT)
    other = srv.connect(timeout=TIMEOUT)
    stop = threading.Event()
    flooding = threading.Event()
    failed: list[OSError] = []

    def flood() -> None:
        junk = b"x" * 65536
        # A safety bound only: the test stops the flood long before it.
        end = time.monotonic() + 6 * TIMEOUT
        while not stop.is_set() and time.monotonic() < end:
            try:
                flooder.sendall(junk)
            except OSError as exc:
                failed.append(exc)
                return
            flooding.set()

    with flooder, other:
        assert flooder.recv(1024).startswith(b"220")
        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        try:
            assert flooding.wait(TIMEOUT)
            for _ in range(20):
                assert send(other, "NOOP").startswith("200")
            assert not failed, "the server cut the flood short"
            assert thread.is_alive(), "the flood ended before the NOOPs"
        finally:
            stop.set()
            thread.join(TIMEOUT)
