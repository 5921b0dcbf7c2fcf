"""The per-address caps a public server needs, on real instances: sessions (max_per_ip), TLS
handshakes in progress (max_tls_handshakes_per_ip) and passive ports (max_pasv_per_ip, counted
across instances).

Every wait is for something the server does (a reply, a close, a log line), with a deadline.
Loopback has a single IPv6 address, so the /64 rule is shown in a network namespace of our own
whose loopback holds several addresses of one /64 (root only; skipped otherwise).
"""

from __future__ import annotations

import contextlib
import ctypes
import ftplib
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.integration.ftps import (
    CertPair,
    ReusingFTP_TLS,
    client_context,
    tls_settings,
)
from tests.integration.raw_ftp import RawControl, read_until_closed
from tests.integration.raw_ftp import send_line as send
from tests.integration.servers import HOSTS, Server, wait_for_log, wait_until

ServerFactory = Callable[..., Server]


TIMEOUT = 10


# -- max_per_ip by address key ---------------------------------------------------------------


def test_max_per_ip_refusals_are_logged_once_per_address(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1", max_per_ip=1)
    with srv.connect(timeout=TIMEOUT) as first:
        for _ in range(3):
            with RawControl(srv.host, srv.port, timeout=TIMEOUT) as extra:
                assert extra.reply().code == 421
                assert extra.is_closed()
        assert first.voidcmd("NOOP").startswith("200")
        # A line logged after the refusals: the refusals' lines are in the log by then.
        assert first.sendcmd("QUIT").startswith("221")
    logs = wait_for_log(srv, 'FTP response: Client "127.0.0.1", "221')
    assert logs.count("connection from 127.0.0.1 refused") == 1, logs[-3000:]


# -- max_tls_handshakes_per_ip ---------------------------------------------------------------


def client_hello() -> bytes:
    """A real TLS ClientHello, the first flight of a handshake this client will not finish."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def stalled_handshake(srv: Server) -> RawControl:
    """AUTH TLS and a ClientHello; returns once the server answered it (its thread is busy)."""
    ctl = RawControl(srv.host, srv.port, timeout=TIMEOUT)
    assert ctl.reply().code == 220
    assert ctl.command("AUTH TLS").code == 234
    ctl.send(client_hello())
    assert ctl.sock.recv(1), "the server did not answer the ClientHello"
    return ctl


def over_the_cap(srv: Server) -> bytes:
    with RawControl(srv.host, srv.port, timeout=TIMEOUT) as ctl:
        assert ctl.reply().code == 220
        assert ctl.command("AUTH TLS").code == 234
        ctl.send(client_hello())
        return read_until_closed(ctl.sock)


def tls_login(srv: Server, source: str | None = None) -> ReusingFTP_TLS:
    ftp = ReusingFTP_TLS(context=client_context(), timeout=TIMEOUT)
    ftp.connect(srv.host, srv.port, source_address=(source, 0) if source else None)
    ftp.auth()
    ftp.login(srv.user, srv.password)
    return ftp


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_one_address_cannot_hold_more_tls_handshakes_than_its_cap(
    server_factory: ServerFactory, tls_cert: CertPair, host: str
) -> None:
    srv = server_factory(
        host, **tls_settings(tls_cert, max_tls_handshakes_per_ip=2, tls_handshake_timeout=20)
    )
    stalled = [stalled_handshake(srv), stalled_handshake(srv)]
    try:
        for _ in range(3):
            assert over_the_cap(srv) == b"", "a handshake over the cap is closed unanswered"
        if host == "127.0.0.1":
            # Another address is not held back.
            other = tls_login(srv, source="127.0.0.2")
            assert other.voidcmd("NOOP").startswith("200")
            other.close()
            logs = wait_for_log(srv, "TLS established with 127.0.0.2")
        else:
            logs = wait_for_log(srv, "TLS handshake with ::1 refused")
        assert logs.count(f"TLS handshake with {host} refused") == 1, "logged once per address"
        # One stalled client gives up: its slot is free again.
        failed = f"TLS handshake with {host} failed"
        before = srv.log_text().count(failed)
        stalled.pop().close()
        wait_until(
            lambda: srv.log_text().count(failed) >= before + 1, "the given-up handshake logged"
        )
        again = tls_login(srv)
        try:
            assert again.voidcmd("NOOP").startswith("200")
        finally:
            again.close()
    finally:
        for ctl in stalled:
            ctl.close()


# -- max_pasv_per_ip -------------------------------------------------------------------------


def pasv(ftp: ftplib.FTP) -> str:
    """PASV, or EPSV on IPv6 (where PASV is refused): the whole reply."""
    assert ftp.sock is not None
    return send(ftp, "EPSV" if ftp.sock.family == socket.AF_INET6 else "PASV")


PASV_REFUSED = "425 Too many passive ports held from your address; try again later."


def connect_from(srv: Server, source: str | None = None) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(srv.host, srv.port, source_address=(source, 0) if source else None)
    ftp.login(srv.user, srv.password)
    return ftp


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_one_address_cannot_hold_more_passive_ports_than_its_cap(
    server_factory: ServerFactory, host: str
) -> None:
    srv = server_factory(host, max_pasv_per_ip=2)
    with contextlib.ExitStack() as stack:
        a, b, c = (stack.enter_context(connect_from(srv)) for _ in range(3))
        assert pasv(a).startswith(("227", "229"))
        assert pasv(b).startswith(("227", "229"))
        assert pasv(c) == PASV_REFUSED
        assert send(c, "EPSV") == PASV_REFUSED
        assert c.voidcmd("NOOP").startswith("200"), "the session goes on"
        # PASV again in a session that holds a port gives that port back first.
        assert pasv(a).startswith(("227", "229"))
        if host == "127.0.0.1":
            other = stack.enter_context(connect_from(srv, source="127.0.0.2"))
            assert pasv(other).startswith("227"), "another address is not held back"
        # A transfer's end gives the port back.
        assert b.nlst() == []
        assert pasv(c).startswith(("227", "229"))
        assert pasv(b) == PASV_REFUSED
    logs = wait_for_log(srv, "max_pasv_per_ip")
    key = "::/64" if host == "::1" else host
    assert f"passive port for {host} refused: {key} holds 2 passive ports" in logs
    assert logs.count(f"passive port for {host} refused") == 1, "logged once per address"
    lease_dir = srv.home.parent.parent / "run" / "ports"
    wait_until(
        lambda: not list(lease_dir.glob("client-*")), "slot files removed after the sessions"
    )


def start_sibling(
    srv: Server,
    name: str,
    host: str,
    *,
    listener: socket.socket | None = None,
    **settings: object,
) -> Server:
    """Another instance in `srv`'s config directory: it shares the passive range's state.

    `listener`, when given, is the listening socket to serve (it is closed here).
    """
    text = (srv.config_dir / "test.toml").read_text()
    settings = {**settings, "listen_address": f'"{host}"'}
    lines = [line for line in text.splitlines() if line.split(" ", 1)[0] not in settings]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    path = srv.config_dir / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    if listener is None:
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        listener.bind((host, 0))
        listener.listen(16)
    process = subprocess.Popen(
        [sys.executable, "-m", "ftpsup", "serve", str(path), "--listen-fd", str(listener.fileno())],
        pass_fds=[listener.fileno()],
        stdin=subprocess.DEVNULL,
    )
    port = listener.getsockname()[1]
    listener.close()
    return Server(host, port, srv.home, srv.config_dir, srv.log_dir, process)


@pytest.fixture
def siblings(server_factory: ServerFactory) -> Iterator[tuple[Server, Server]]:
    first = server_factory("127.0.0.1", max_pasv_per_ip=2)
    second = start_sibling(first, "second", "127.0.0.3", max_pasv_per_ip=2)
    try:
        yield first, second
    finally:
        second.stop()


def test_the_passive_cap_counts_ports_held_through_every_instance(
    siblings: tuple[Server, Server],
) -> None:
    first, second = siblings
    with contextlib.ExitStack() as stack:
        on_first = stack.enter_context(connect_from(first))
        on_second = [stack.enter_context(connect_from(second)) for _ in range(2)]
        assert pasv(on_first).startswith("227")
        assert pasv(on_second[0]).startswith("227")
        assert pasv(on_second[1]) == PASV_REFUSED, "one port here, one there: the cap is 2"
        assert on_first.sendcmd("QUIT").startswith("221")
        wait_until(lambda: pasv(on_second[1]).startswith("227"), "the first instance's port back")


def test_a_passive_cap_of_zero_means_no_cap(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1", max_pasv_per_ip=0)
    with contextlib.ExitStack() as stack:
        sessions = [stack.enter_context(connect_from(srv)) for _ in range(12)]
        assert all(pasv(ftp).startswith("227") for ftp in sessions)
    assert not list((srv.home.parent.parent / "run" / "ports").glob("client-*"))


# -- an IPv6 /64 is one address: several addresses of one network, in a network namespace -------

NETNS_NET = "fd00:1:2:3::"
NETNS_OTHER_NET = "fd00:1:2:4::"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace whose loopback holds fd00:1:2:3::1-5 and fd00:1:2:4::1."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a network namespace needs root and iproute2")
    name = f"ftpsup-limits-{os.getpid()}-{random.randrange(1 << 30)}"
    try:
        _run("ip", "netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace: {exc.stderr!r}")
    try:
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        for address in [f"{NETNS_NET}{i}" for i in range(1, 6)] + [f"{NETNS_OTHER_NET}1"]:
            _run("ip", "netns", "exec", name, "ip", "-6", "addr", "add", address, "dev", "lo")
        yield name
    finally:
        _run("ip", "netns", "del", name)


def in_netns(name: str, make: Callable[[], T]) -> T:
    """Run `make` in a thread that has entered the namespace: sockets it creates live there."""
    result: list[T] = []
    errors: list[BaseException] = []

    def enter_and_make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            result.append(make())
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    # setns changes the namespace of the calling thread only: a thread of its own, then.
    thread = threading.Thread(target=enter_and_make)
    thread.start()
    thread.join(TIMEOUT)
    if errors:
        raise errors[0]
    assert result, "the namespace thread did not finish"
    return result[0]


def listener_at(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, 0))
    sock.listen(16)
    return sock


def greeting_from(netns: str, srv: Server, source: str) -> tuple[socket.socket, str]:
    """Connect to `srv` from `source` in the namespace; the socket and its first line."""

    def bound() -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.bind((source, 0))
        return sock

    sock = in_netns(netns, bound)
    sock.settimeout(TIMEOUT)
    sock.connect((srv.host, srv.port))
    line = b""
    while not line.endswith(b"\r\n") and len(line) < 4096:
        chunk = sock.recv(1)
        if not chunk:
            break
        line += chunk
    return sock, line.decode().strip()


@pytest.mark.parametrize(("prefix", "third_admitted"), [(64, False), (128, True)])
def test_max_per_ip_counts_an_ipv6_network_as_one_address(
    server_factory: ServerFactory, netns: str, prefix: int, third_admitted: bool
) -> None:
    base = server_factory("::1")
    srv = start_sibling(
        base,
        "netns",
        f"{NETNS_NET}1",
        listener=in_netns(netns, lambda: listener_at(f"{NETNS_NET}1")),
        max_per_ip=2,
        per_ip_ipv6_prefix=prefix,
    )
    held: list[socket.socket] = []
    try:
        for host in (2, 3):
            sock, line = greeting_from(netns, srv, f"{NETNS_NET}{host}")
            held.append(sock)
            assert line.startswith("220"), line
        sock, line = greeting_from(netns, srv, f"{NETNS_NET}4")
        held.append(sock)
        if third_admitted:
            assert line.startswith("220"), "with a /128 prefix each address counts alone"
        else:
            assert line == "421 There are too many connections from your internet address."
        sock, line = greeting_from(netns, srv, f"{NETNS_OTHER_NET}1")
        held.append(sock)
        assert line.startswith("220"), "another /64 is another address"
    finally:
        for sock in held:
            sock.close()
        srv.stop()
    if not third_admitted:
        logs = srv.log_text()
        assert f"connection from {NETNS_NET}4 refused: 2 sessions from {NETNS_NET}/64" in logs
