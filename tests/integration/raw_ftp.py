"""Hand-made control and data connections for the integration tests.

ftplib picks the data mode itself (PASV on IPv4, EPSV on IPv6); these helpers let a test
choose PASV, EPSV, PORT or EPRT, read a data connection byte for byte, and speak raw FTP.
"""

from __future__ import annotations

import ftplib
import socket
import time

import attrs

from tests.integration.servers import PASSWORD, USER

# -- hand-made control and data connections -----------------------------------------------
# ftplib picks the data mode itself (PASV on IPv4, EPSV on IPv6); these helpers let a test
# choose PASV, EPSV, PORT or EPRT, read a data connection byte for byte, and speak raw FTP.

DATA_MODES = ["PASV", "EPSV", "PORT", "EPRT"]
IPV4_ONLY_MODES = frozenset({"PASV", "PORT"})


# Upper bound for anything read in one go: no test file comes near it.
MAX_READ = 64 * 1024 * 1024


def recv_all(conn: socket.socket, *, limit: int = MAX_READ, timeout: float = 30) -> bytes:
    """Read a data connection to EOF, within `timeout` seconds and `limit` bytes."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("data connection not closed in time")
        conn.settimeout(remaining)
        chunk = conn.recv(1024 * 1024)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise AssertionError(f"more than {limit} bytes on the data connection")


def open_data(
    ftp: ftplib.FTP, mode: str, command: str, *, rcvbuf: int | None = None, timeout: float = 10
) -> tuple[socket.socket, str]:
    """Open the data connection for `command` in `mode` (PASV, EPSV, PORT or EPRT) by hand.

    Returns:
        The connected data socket and the server's 1xx reply to `command`.

    Raises:
        ftplib.Error: the server refused the mode or the command (the socket is closed).
    """
    assert ftp.sock is not None
    family = ftp.sock.family
    host = str(ftp.sock.getpeername()[0])
    conn = socket.socket(family, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    if rcvbuf is not None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        if mode in ("PASV", "EPSV"):
            answer = ftp.sendcmd(mode)
            if mode == "PASV":
                port = ftplib.parse227(answer)[1]
            else:
                port = ftplib.parse229(answer, (host, ftp.port))[1]
            conn.connect((host, port))
            return conn, _preliminary(ftp.sendcmd(command))
        conn.bind((host, 0))
        conn.listen(1)
        port = conn.getsockname()[1]
        if mode == "PORT":
            ftp.sendcmd(f"PORT {host.replace('.', ',')},{port >> 8},{port & 0xFF}")
        else:
            ftp.sendcmd(f"EPRT |{2 if family == socket.AF_INET6 else 1}|{host}|{port}|")
        preliminary = _preliminary(ftp.sendcmd(command))
        accepted, _ = conn.accept()
        accepted.settimeout(timeout)
        conn.close()
        return accepted, preliminary
    except BaseException:
        conn.close()
        raise


def _preliminary(answer: str) -> str:
    if not answer.startswith("1"):
        raise ftplib.error_reply(answer)
    return answer


def upload(ftp: ftplib.FTP, mode: str, command: str, data: bytes) -> str:
    """Send `data` for STOR/APPE/STOU in `mode`; returns the final reply (226 expected)."""
    conn, _ = open_data(ftp, mode, command)
    with conn:
        conn.sendall(data)
    return ftp.voidresp()


def download(ftp: ftplib.FTP, mode: str, command: str) -> bytes:
    """Read what RETR/LIST/NLST/MLSD sends in `mode`; checks the final reply is 2xx."""
    conn, _ = open_data(ftp, mode, command)
    with conn:
        data = recv_all(conn)
    ftp.voidresp()
    return data


@attrs.frozen
class FtpReply:
    """One reply as read off the wire: its code and its lines without CRLF."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class RawControl:
    """A control connection that sends exactly the bytes given and reads whole replies."""

    MAX_LINE = 64 * 1024
    MAX_LINES = 10_000

    def __init__(self, host: str, port: int, *, timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""

    def __enter__(self) -> RawControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str | bytes) -> FtpReply:
        """Send one command line (CRLF added) and read its reply."""
        raw = line.encode() if isinstance(line, str) else line
        self.send(raw + b"\r\n")
        return self.reply()

    def login(self, user: str = USER, password: str = PASSWORD) -> FtpReply:
        assert self.command(f"USER {user}").code == 331
        return self.command(f"PASS {password}")

    def _line(self) -> str:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > self.MAX_LINE:
                raise AssertionError("reply line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("control connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode("utf-8", errors="surrogateescape")

    def reply(self) -> FtpReply:
        """Read one reply, single or multi-line (RFC 959 §4.2)."""
        first = self._line()
        code = int(first[:3])
        lines = [first[4:]]
        if first[3:4] == "-":
            for _ in range(self.MAX_LINES):
                line = self._line()
                if line.startswith(f"{code} "):
                    lines.append(line[4:])
                    return FtpReply(code, tuple(lines))
                lines.append(line)
            raise AssertionError("multi-line reply never ended")
        return FtpReply(code, tuple(lines))

    def is_closed(self, timeout: float = 5) -> bool:
        """True when the server closes the connection within `timeout` (after any unread reply)."""
        if self._buffer:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def send_line(ftp: ftplib.FTP, line: str) -> str:
    """Send one command and return the whole reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()


def read_until_closed(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection, within `timeout`."""
    deadline = time.monotonic() + timeout
    received = b""
    while (remaining := deadline - time.monotonic()) > 0 and len(received) < 1 << 20:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept the connection open; it sent {received[:200]!r}")
