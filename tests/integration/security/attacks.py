"""Helpers of the security tests: a command, a download and an upload that return the server's
reply instead of raising, the bytes an attacker sends, and the timeout of every connection.
"""

from __future__ import annotations

import ftplib
import io
from collections.abc import Callable

from tests.integration.servers import Server

ATTACK = b"attacker bytes\n"
TIMEOUT = 10
ServerFactory = Callable[..., Server]


# -- helpers -------------------------------------------------------------------------------


def send(ftp: ftplib.FTP, line: str) -> str:
    """Send one command and return the whole reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()


def retr(ftp: ftplib.FTP, cmd: str) -> tuple[str, bytes]:
    chunks: list[bytes] = []
    try:
        reply = ftp.retrbinary(cmd, chunks.append)
    except ftplib.Error as exc:
        reply = str(exc)
    return reply, b"".join(chunks)


def stor(ftp: ftplib.FTP, cmd: str, data: bytes = ATTACK) -> str:
    try:
        return ftp.storbinary(cmd, io.BytesIO(data))
    except ftplib.Error as exc:
        return str(exc)
