"""Helpers of the ftplib transfer tests: the data mode and the large file they use, digests,
where a virtual path is on disk, the address family, and a download held slow enough to still
be running when a test sends ABOR, NOOP or STAT.
"""

from __future__ import annotations

import ftplib
import hashlib
import socket
from pathlib import Path

from tests.integration.raw_ftp import (
    open_data,
)
from tests.integration.servers import Server

MODE = "EPSV"
BIG_FILE = "/big.bin"


# A small receive buffer keeps a download from draining into kernel buffers, so it is still
# running when the test sends ABOR, NOOP or STAT.
SLOW_RCVBUF = 64 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def on_disk(server: Server, vpath: str) -> Path:
    return server.home / vpath.lstrip("/")


def is_ipv6(server: Server) -> bool:
    return ":" in server.host


# -- ABOR -----------------------------------------------------------------------------------


def start_slow_download(ftp: ftplib.FTP, first: int = 65536) -> tuple[socket.socket, bytes]:
    conn, _ = open_data(ftp, MODE, f"RETR {BIG_FILE}", rcvbuf=SLOW_RCVBUF)
    head = b""
    while len(head) < first:  # every pass reads at least one byte or fails
        chunk = conn.recv(first - len(head))
        assert chunk, "download ended early"
        head += chunk
    return conn, head
