"""Data connections of a real ftpsup instance: FTP bounce (RFC 2577 §3) through PORT and EPRT,
and passive connection theft from another address, each with its promiscuous setting.
"""

from __future__ import annotations

import ftplib
import socket

from tests.integration.raw_ftp import send_line as send
from tests.integration.security.attacks import TIMEOUT, ServerFactory
from tests.integration.servers import Server, wait_for_log

# -- FTP bounce (RFC 2577 §3) ----------------------------------------------------------------


def _active_args(server: Server, host: str, port: int) -> str:
    family = 2 if ":" in server.host else 1
    return f"EPRT |{family}|{host}|{port}|"


def test_port_to_another_host_is_refused(ftp: ftplib.FTP, server: Server) -> None:
    if ":" in server.host:
        commands = [_active_args(server, "::2", 40000), _active_args(server, "2001:db8::1", 40000)]
    else:
        commands = ["PORT 127,0,0,2,156,64", "EPRT |1|127.0.0.2|40000|", "PORT 192,0,2,1,156,64"]
    for command in commands:
        assert send(ftp, command) == f"500 Illegal {command.split()[0]} command.", command
        # No target was recorded: a transfer now has no data connection to use.
        assert send(ftp, "LIST").startswith("425")
    # The log line may be written just after the reply: waited for, within TIMEOUT.
    assert "refused" in wait_for_log(server, "refused")


def test_port_to_a_privileged_port_is_refused(ftp: ftplib.FTP, server: Server) -> None:
    if ":" in server.host:
        commands = ["EPRT |2|::1|80|", "EPRT |2|::1|1023|", "EPRT |2|::|21|"]
    else:
        commands = ["PORT 127,0,0,1,0,80", "PORT 127,0,0,1,3,255", "EPRT |1|127.0.0.1|21|"]
    for command in commands:
        assert send(ftp, command) == f"500 Illegal {command.split()[0]} command.", command
        assert send(ftp, "LIST").startswith("425")


def _serve_active_listing(ftp: ftplib.FTP, listener: socket.socket, command: str) -> bytes:
    """Issue PORT/EPRT `command`, then LIST, and collect what arrives at `listener`."""
    assert send(ftp, command).startswith("200")
    ftp.putcmd("LIST")
    assert ftp.getresp().startswith("150")
    listener.settimeout(TIMEOUT)
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(TIMEOUT)
        data = b"".join(iter(lambda: conn.recv(65536), b""))
    assert ftp.getresp().startswith("226")
    return data


def test_eprt_with_the_unspecified_address_connects_back_to_the_client(
    ftp: ftplib.FTP, server: Server, workdir: str
) -> None:
    (server.home / workdir.lstrip("/") / "seen.txt").write_bytes(b"x")
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    with socket.socket(family) as listener:
        listener.bind((server.host, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        unspecified = "::" if family == socket.AF_INET6 else "0.0.0.0"
        data = _serve_active_listing(ftp, listener, _active_args(server, unspecified, port))
    assert b"seen.txt" in data


def test_port_promiscuous_allows_another_host(server_factory: ServerFactory) -> None:
    srv = server_factory("127.0.0.1", port_promiscuous=True)
    (srv.home / "seen.txt").write_bytes(b"x")
    ftp = srv.connect(timeout=TIMEOUT)
    with socket.socket() as listener, ftp:
        listener.bind(("127.0.0.2", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        data = _serve_active_listing(ftp, listener, f"PORT 127,0,0,2,{port >> 8},{port & 255}")
    assert b"seen.txt" in data


# -- passive connection theft -----------------------------------------------------------------


def _pasv_port(ftp: ftplib.FTP) -> int:
    return ftplib.parse227(send(ftp, "PASV"))[1]


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(TIMEOUT)
    try:
        return b"".join(iter(lambda: sock.recv(65536), b""))
    except ConnectionResetError:
        return b""


def test_passive_connection_from_another_address_is_refused_and_logged(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1")
    (srv.home / "seen.txt").write_bytes(b"x")
    with srv.connect(timeout=TIMEOUT) as ftp:
        port = _pasv_port(ftp)
        thief = socket.create_connection(("127.0.0.1", port), TIMEOUT, ("127.0.0.2", 0))
        with thief:
            ftp.putcmd("LIST")
            assert ftp.getresp().startswith("150")
            assert _read_all(thief) == b""
        with socket.create_connection(("127.0.0.1", port), TIMEOUT) as real:
            assert b"seen.txt" in _read_all(real)
        assert ftp.getresp().startswith("226")
    refused = f"passive connection to port {port} from 127.0.0.2 refused"
    assert refused in wait_for_log(srv, refused)


def test_pasv_promiscuous_serves_a_connection_from_another_address(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1", pasv_promiscuous=True)
    (srv.home / "seen.txt").write_bytes(b"x")
    with srv.connect(timeout=TIMEOUT) as ftp:
        port = _pasv_port(ftp)
        with socket.create_connection(("127.0.0.1", port), TIMEOUT, ("127.0.0.2", 0)) as other:
            ftp.putcmd("LIST")
            assert ftp.getresp().startswith("150")
            assert b"seen.txt" in _read_all(other)
        assert ftp.getresp().startswith("226")
