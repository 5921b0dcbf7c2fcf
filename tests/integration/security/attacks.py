"""Helpers of the security tests: a download and an upload that return the server's reply
instead of raising, the bytes an attacker sends, and the timeout of every connection (a raw
command is raw_ftp.send_line).
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
