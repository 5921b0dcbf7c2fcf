"""A transfer waiting for its data connection, and an instance out of file descriptors.

- While a transfer waits for its data connection (after its 150), the control connection is
  still read: a client that goes away releases its passive lease at once, not when
  accept_timeout runs out. accept_timeout is an hour here, so only that can pass the test.
- At the descriptor limit, accept() failures are logged when they start and when they end,
  not every 100 ms, and PASV/EPSV answer 425 without a traceback.
"""

from __future__ import annotations

import ftplib
import os
import resource
import socket
import time
from collections.abc import Callable

import pytest

from ftpsup.ports import PortAllocator
from tests.integration.ftps import CertPair, connect_tls, tls_settings
from tests.integration.raw_ftp import RawControl
from tests.integration.servers import HOSTS, PASV_MAX, PASV_MIN, Server, wait_until

ServerFactory = Callable[..., Server]

TIMEOUT = 10
# Far above how long a prompt release takes, far below accept_timeout.
RELEASE_DEADLINE = 10
ACCEPT_TIMEOUT = 3600


def leased_ports(srv: Server) -> list[int]:
    allocator = PortAllocator(
        srv.home.parent.parent / "run" / "ports", PASV_MIN, PASV_MAX, owner="test-probe"
    )
    return [port for port, _ in allocator.leases_in_use()]


def wait_for_leases(srv: Server, expected: list[int], timeout: float) -> list[int]:
    """Poll the lease files until they show `expected` or `timeout` passes; returns the last."""
    deadline = time.monotonic() + timeout
    while True:
        found = leased_ports(srv)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def passive(client: RawControl, ipv6: bool) -> int:
    answer = client.command("EPSV" if ipv6 else "PASV")
    if ipv6:
        assert answer.code == 229, answer
        return int(answer.text.split("|||", 1)[1].split("|", 1)[0])
    assert answer.code == 227, answer
    numbers = answer.text.split("(", 1)[1].split(")", 1)[0].split(",")
    return int(numbers[4]) * 256 + int(numbers[5])


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("command", ["RETR f", "LIST", "STOR g"])
@pytest.mark.parametrize("queued", ["", "DELE f"], ids=["alone", "queued"])
def test_a_client_gone_while_its_transfer_waits_releases_the_lease_at_once(
    server_factory: ServerFactory, host: str, command: str, queued: str
) -> None:
    srv = server_factory(host, accept_timeout=ACCEPT_TIMEOUT)
    srv.home.mkdir(parents=True, exist_ok=True)
    (srv.home / "f").write_bytes(b"data")
    with RawControl(srv.host, srv.port, timeout=TIMEOUT) as client:
        assert client.reply().code == 220
        assert client.login().code == 230
        port = passive(client, ":" in host)
        assert wait_for_leases(srv, [port], TIMEOUT) == [port]
        assert client.command(command).code == 150
        if queued:
            # A command behind the transfer waits for its end (RFC 959 order of replies).
            client.send(queued.encode() + b"\r\n")
        # The client never connects to `port` and goes away.
    # Released within seconds: with accept_timeout at an hour, only the fix can do that.
    assert wait_for_leases(srv, [], RELEASE_DEADLINE) == []
    # The queued command died with its client: RETR then DELE must not lose the file. The
    # stop waits for the session to end, so a DELE that ran would have run by then.
    srv.stop()
    assert srv.process.returncode == 0
    assert (srv.home / "f").read_bytes() == b"data"


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_a_tls_client_gone_while_its_transfer_waits_releases_the_lease_at_once(
    server_factory: ServerFactory, tls_cert: CertPair, host: str
) -> None:
    srv = server_factory(host, accept_timeout=ACCEPT_TIMEOUT, **tls_settings(tls_cert))
    srv.home.mkdir(parents=True, exist_ok=True)
    (srv.home / "f").write_bytes(b"data")
    ftp = connect_tls(srv, timeout=TIMEOUT)
    try:
        answer = ftp.sendcmd("EPSV")
        port = ftplib.parse229(answer, (host, srv.port))[1]
        assert wait_for_leases(srv, [port], TIMEOUT) == [port]
        ftp.putcmd("RETR f")
        assert ftp.getresp().startswith("150")
        ftp.putcmd("DELE f")
    finally:
        # Gone without close_notify, as a client that crashed.
        ftp.close()
    assert wait_for_leases(srv, [], RELEASE_DEADLINE) == []
    srv.stop()
    assert (srv.home / "f").read_bytes() == b"data"


# -- out of file descriptors ---------------------------------------------------------------

ACCEPT_FAILED = "accept failed"
ACCEPTING_AGAIN = "accepting again after"


def open_fds(pid: int) -> set[int]:
    return {int(name) for name in os.listdir(f"/proc/{pid}/fd")}


def lowest_free_fd(pid: int) -> int:
    used = open_fds(pid)
    return next(fd for fd in range(len(used) + 1) if fd not in used)


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_at_the_descriptor_limit_accept_logs_twice_and_passive_answers_425(
    server_factory: ServerFactory, host: str
) -> None:
    srv = server_factory(host)
    pid = srv.process.pid
    lock_dir = srv.home.parent.parent / "run" / "ports"
    with RawControl(srv.host, srv.port, timeout=TIMEOUT) as client:
        assert client.reply().code == 220
        assert client.login().code == 230
        # The lock files are created in the background at start: let that finish first.
        wait_until(
            lambda: len(list(lock_dir.glob("*"))) == PASV_MAX - PASV_MIN + 1,
            "the passive lock files",
        )
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # Every new descriptor of the server now fails with EMFILE.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free_fd(pid), hard))
        waiting = [socket.create_connection((srv.host, srv.port), TIMEOUT) for _ in range(5)]
        try:
            wait_until(lambda: ACCEPT_FAILED in srv.log_text(), "the first accept failure")
            verbs = ["EPSV"] if ":" in host else ["PASV", "EPSV"]
            for verb in verbs:
                answer = client.command(verb)
                assert answer.code == 425, answer
            assert client.command("NOOP").code == 200
            # One line per shortage, however many retries: checked at the end. The retries'
            # backoff and the single line over a long shortage are timed under trio's
            # MockClock in tests/server/test_accept_shortage.py, not watched here.
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        # The queued connections are served once descriptors are back.
        for conn in waiting:
            with conn:
                conn.settimeout(TIMEOUT)
                assert conn.recv(4).startswith(b"220")
        wait_until(lambda: ACCEPTING_AGAIN in srv.log_text(), "the end of the shortage")
        assert client.command("EPSV").code == 229
    logs = srv.log_text()
    assert "Traceback" not in logs
    assert logs.count(ACCEPT_FAILED) == 1
    assert logs.count(ACCEPTING_AGAIN) == 1
