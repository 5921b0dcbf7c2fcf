"""Resources of a real ftpsup instance beyond passive ports: connection limits (max_clients,
max_per_ip), a full disk, and idle sessions.
"""

from __future__ import annotations

import ftplib
import hashlib
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.raw_ftp import send_line as send
from tests.integration.resource_checks import TIMEOUT, enter_passive, transfer
from tests.integration.servers import Server, wait_until

ServerFactory = Callable[..., Server]


def passive_port(ftp: ftplib.FTP, verb: str | None = None) -> int:
    reply, port = enter_passive(ftp, verb)
    assert port is not None, reply
    return port


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
