"""The fuzzer's side of the wire: a control connection that survives any reply, and data sockets.

Theory of operation: the fuzzer sends things the server may answer with any number of replies,
or none (a line without its end, raw bytes, a pipelined burst). So it never counts replies.
After each action it sends `HELP <nonce>`; the server answers that with "502 Unknown command
<NONCE>." once everything before it has been answered, so reading up to that reply collects
every reply of the action, whatever their number. Replies are queued in order (RFC 959), so
the marker cannot overtake them.

Rules:
- Every socket operation has a timeout taken from one deadline per action; a read that runs
  past it raises Stalled, and the driver ends that session.
- Every loop is bounded by count and bytes as well as by the deadline.
- A reply line that is not "DDD text" or "DDD-text" (or a continuation inside a multi-line
  reply) is kept as an anomaly: it means something unescaped reached the control connection.
  So is a listing line split by a bare CR or LF.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time

import attrs

MAX_REPLY_BYTES = 1 << 20
MAX_REPLIES = 2000
MAX_DATA = 4 << 20
_REPLY_LINE = re.compile(rb"^(\d{3})([ -])")


@attrs.frozen
class Target:
    """One instance to fuzz."""

    host: str
    port: int
    user: str
    password: str
    tls_required: bool
    # Implicit FTPS: TLS from the first byte, before the greeting.
    implicit: bool = False
    # Anonymous logins are allowed (over plain FTP only, as vsftpd's allow_anon_ssl=NO).
    anonymous: bool = False

    @property
    def v6(self) -> bool:
        return ":" in self.host


class Stalled(Exception):
    """No complete answer before the action's deadline."""


class Closed(Exception):
    """The server closed the control connection."""


@attrs.frozen
class Reply:
    code: int
    lines: tuple[bytes, ...]

    @property
    def first(self) -> bytes:
        return self.lines[0]


@attrs.define
class Session:
    """One fuzzed session: its control connection and what the fuzzer believes of its state."""

    target: Target
    ctl: Control
    number: int
    # The client's TLS settings for this session (TLS 1.3, or TLS 1.2 at most).
    tls: ssl.SSLContext
    logged_in: bool = False
    prot_p: bool = False


def client_hello(ctx: ssl.SSLContext) -> bytes:
    """The first flight of a real TLS handshake, to send in part or whole."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Stalled("deadline passed")
    return left


def hard_close(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN (SO_LINGER 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


class Control:
    """A control connection, plain or TLS, that reads replies without trusting them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        # Broken framing seen on this connection (or its data connections), described.
        self.anomalies: list[str] = []
        self.nonce = 0

    @classmethod
    def open(cls, host: str, port: int, deadline: float) -> Control:
        return cls(socket.create_connection((host, port), timeout=remaining(deadline)))

    @property
    def is_tls(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes, deadline: float) -> None:
        self.sock.settimeout(remaining(deadline))
        try:
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise Stalled("send blocked") from exc
        except (OSError, ssl.SSLError) as exc:
            raise Closed(str(exc)) from exc

    def send_urgent_abort(self, deadline: float) -> None:
        """ABOR as ftplib sends it: Telnet IP, then IAC DM with DM as TCP urgent data."""
        if self.is_tls:
            self.send(b"\xff\xf4\xff\xf2ABOR\r\n", deadline)
            return
        self.send(b"\xff\xf4\xff", deadline)
        try:
            self.sock.send(b"\xf2", socket.MSG_OOB)
        except OSError as exc:
            raise Closed(str(exc)) from exc
        self.send(b"ABOR\r\n", deadline)

    def trickle(self, data: bytes, pieces: list[int], deadline: float) -> None:
        """Send `data` in many small writes (TLS: many small records)."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = 0
        for size in pieces:
            if start >= len(data):
                break
            self.send(data[start : start + size], deadline)
            start += size
        self.send(data[start:], deadline)

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > MAX_REPLY_BYTES:
                raise Closed("reply line too long")
            self.sock.settimeout(remaining(deadline))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError as exc:
                raise Stalled("no reply") from exc
            except (OSError, ssl.SSLError) as exc:
                raise Closed(str(exc)) from exc
            if not chunk:
                raise Closed("EOF")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def reply(self, deadline: float) -> Reply:
        """One whole reply (multi-line ones too, RFC 959 §4.2)."""
        first = self._line(deadline)
        match = _REPLY_LINE.match(first)
        if match is None:
            self.anomalies.append(f"reply line {first[:200]!r}")
            return Reply(0, (first,))
        code = int(match.group(1))
        lines = [first]
        if match.group(2) == b"-":
            end = match.group(1) + b" "
            for _ in range(MAX_REPLIES):
                line = self._line(deadline)
                lines.append(line)
                if line.startswith(end):
                    break
            else:
                raise Closed("multi-line reply never ended")
        return Reply(code, tuple(lines))

    def command(self, line: bytes, deadline: float) -> Reply:
        """Send one line and read one reply (for lines that get exactly one)."""
        self.send(line + b"\r\n", deadline)
        return self.reply(deadline)

    def sync(self, deadline: float, *, end_line: bool = False) -> list[Reply]:
        """Every reply still due, read up to the answer to a HELP marker sent now."""
        self.nonce += 1
        marker = f"Z{self.nonce:X}".encode()
        # A CRLF first ends whatever partial line (or Telnet sequence) an action left behind.
        self.send((b"\r\n" if end_line else b"") + b"HELP " + marker + b"\r\n", deadline)
        replies: list[Reply] = []
        for _ in range(MAX_REPLIES):
            answer = self.reply(deadline)
            if answer.code == 502 and marker + b"." in answer.first:
                return replies
            replies.append(answer)
        raise Closed("no end to the replies")

    def start_tls(self, ctx: ssl.SSLContext, deadline: float) -> None:
        """The client side of the handshake after 234, on the same socket."""
        self.sock.settimeout(remaining(deadline))
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        except TimeoutError as exc:
            raise Stalled("TLS handshake") from exc
        except (OSError, ssl.SSLError) as exc:
            raise Closed(f"TLS handshake: {exc}") from exc
        self.buffer = b""

    def session(self) -> ssl.SSLSession | None:
        return self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None

    def wait_closed(self, deadline: float) -> bool:
        """True once the server closes the connection, reading and dropping what it sends."""
        total = 0
        while total < MAX_REPLY_BYTES:
            try:
                self.sock.settimeout(remaining(deadline))
                chunk = self.sock.recv(65536)
            except Stalled:
                return False
            except TimeoutError:
                return False
            except (OSError, ssl.SSLError):
                return True
            if not chunk:
                return True
            total += len(chunk)
        return False


def passive_port(answer: Reply) -> int | None:
    """The port of a 227 or 229 reply, or None."""
    text = answer.first.decode("latin-1")
    if answer.code == 227:
        found = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", text)
        return int(found.group(5)) * 256 + int(found.group(6)) if found else None
    if answer.code == 229:
        found = re.search(r"\(\|\|\|(\d+)\|\)", text)
        return int(found.group(1)) if found else None
    return None


def read_some(sock: socket.socket, limit: int, deadline: float) -> bytes:
    """Read up to `limit` bytes (at most MAX_DATA) or to EOF. Errors just end the reading."""
    chunks: list[bytes] = []
    total = 0
    while total < min(limit, MAX_DATA):
        try:
            sock.settimeout(remaining(deadline))
            chunk = sock.recv(65536)
        except (Stalled, OSError, ssl.SSLError):
            break
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)[:limit]


def broken_listing_lines(listing: bytes) -> list[bytes]:
    """Listing lines broken by a bare CR or LF (a file name's, unescaped).

    Listings are sent as lines ending in CRLF (RFC 959 §3.1.1.1); a name holding CR or LF
    must not split a line, or a client reads a forged entry.
    """
    return [line[:200] for line in listing.split(b"\r\n") if b"\r" in line or b"\n" in line]


def send_some(sock: socket.socket, data: bytes, deadline: float) -> bool:
    """Send `data`; False when the server closed or reset the connection first."""
    try:
        sock.settimeout(remaining(deadline))
        sock.sendall(data)
    except (Stalled, OSError, ssl.SSLError):
        return False
    return True
