"""Helpers of the resource tests: the timeout of every connection, entering passive mode by
hand, and reading a data connection to its end (a raw command is raw_ftp.send_line).
"""

from __future__ import annotations

import ftplib
import re
import socket

from tests.integration.raw_ftp import send_line as send

TIMEOUT = 10


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


def transfer(ftp: ftplib.FTP, host: str, port: int, command: str) -> tuple[str, bytes]:
    """`command` over the passive data connection at `port`, read to its end."""
    with socket.create_connection((host, port), TIMEOUT) as conn:
        reply = send(ftp, command)
        if not reply.startswith("150"):
            return reply, b""
        data = read_all(conn)
    return ftp.getmultiline(), data
