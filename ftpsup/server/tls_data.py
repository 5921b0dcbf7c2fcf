"""TLS on a data connection, driven through memory BIOs over a blocking plain socket.

Why not an `ssl.SSLSocket`: OpenSSL reading straight from a socket makes two `recv` calls per
TLS record (the 5-byte header, then the body) and writing makes one `send` per record of at
most 16 KiB. Here the socket is read and written in chunks of up to `WIRE_CHUNK` bytes and
OpenSSL works on memory, so a 1 GiB upload costs a few thousand system calls instead of
about two hundred thousand (docs/performance.md).

Rules:
- Everything here blocks and runs in a worker thread, like the copy loops in transfer/copying.py.
  The socket keeps the SO_RCVTIMEO/SO_SNDTIMEO set by the caller (a timeout surfaces as
  BlockingIOError); the handshake uses the socket's Python-level timeout instead.
- The plain socket stays the one the session knows: ABOR shuts it down, and the next read
  here sees end of file (SSLEOFError) or the next write fails.
- A clean close_notify from the client reads as 0 bytes; end of file without it raises
  `ssl.SSLEOFError`, so the caller can tell a complete upload from a truncated one. The
  socket's end of file is never fed to OpenSSL: this code raises SSLEOFError itself when
  OpenSSL wants more bytes than will come. So whatever the context says about
  `OP_IGNORE_UNEXPECTED_EOF` (set for strict_ssl_read_eof = false, and by default on CPython
  3.10 to 3.11.2), OpenSSL reports 0 bytes only for a real close_notify; and it never meets an
  unexpected end of file, which it treats as a fatal error that drops the TLS session from the
  server's cache (the client's next data connection could then not resume it). Whether a
  truncated upload is accepted is the caller's rule (strict_ssl_read_eof in
  transfer/copying.py), not the context's.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import cast

from ftpsup.server.tls_sessions import wrap_issuing

# Bytes moved between the socket and OpenSSL per system call: 16 TLS records, and small
# enough to stay in a core's cache (larger buffers measured slower on loopback).
WIRE_CHUNK = 256 * 1024
# OpenSSL 3's reason for end of file without close_notify.
UNEXPECTED_EOF = "UNEXPECTED_EOF_WHILE_READING"


def _truncated() -> ssl.SSLEOFError:
    return ssl.SSLEOFError("connection closed without close_notify")


class TlsDataConnection:
    """A server-side TLS connection over the plain socket `sock`."""

    def __init__(self, ctx: ssl.SSLContext, sock: socket.socket) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._wire = bytearray(WIRE_CHUNK)
        self._tls = ctx.wrap_bio(self._incoming, self._outgoing, server_side=True)
        # The socket reached end of file (kept from OpenSSL: see the module docstring).
        self._ended = False
        # The id of the session the client resumed, taken before any new ticket replaces it.
        self.resumed_id: bytes | None = None

    @classmethod
    def accept(
        cls, ctx: ssl.SSLContext, sock: socket.socket, timeout: float, *, tickets: int = 0
    ) -> TlsDataConnection:
        """Run the server handshake on the connected `sock` (blocking), issuing `tickets`.

        Raises:
            ssl.SSLError, OSError, TimeoutError: the handshake failed or timed out.
        """
        conn = wrap_issuing(ctx, tickets, lambda: cls(ctx, sock))
        sock.settimeout(timeout)
        try:
            conn._until_done(conn._tls.do_handshake, conn._note_resumption)
        finally:
            sock.settimeout(None)
        conn._note_resumption()
        return conn

    def _note_resumption(self) -> None:
        # Called while the server waits for the client's Finished: resumption is decided by
        # then (and proven once the handshake completes), and a ticket this connection issues
        # replaces the session only after that.
        if self.resumed_id is None and self._tls.session_reused:
            session = self._tls.session
            self.resumed_id = session.id if session is not None else b""

    @property
    def session_reused(self) -> bool:
        """Whether the client resumed a session of this connection's context."""
        return self._tls.session_reused

    @property
    def session(self) -> ssl.SSLSession | None:
        """The connection's current session: after a handshake that issued a ticket, its."""
        return self._tls.session

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self) -> None:
        count = self.sock.recv_into(self._wire)
        if count == 0:
            self._ended = True
        else:
            self._incoming.write(memoryview(self._wire)[:count])

    def _until_done(
        self, step: Callable[[], object], waiting: Callable[[], None] | None = None
    ) -> None:
        while True:
            try:
                step()
            except ssl.SSLWantReadError:
                if waiting is not None:
                    waiting()
                self._flush()
                if self._ended:
                    raise ssl.SSLEOFError("connection closed during TLS exchange") from None
                self._fill()
                continue
            self._flush()
            return

    def recv_into(self, buffer: memoryview | bytearray) -> int:
        """Decrypt into `buffer`: whatever whole records are at hand, waiting only for the first.

        Returns:
            The byte count; 0 once the client has sent close_notify.

        Raises:
            ssl.SSLEOFError: the connection ended without close_notify.
            BlockingIOError: nothing arrived within the socket's receive timeout.
        """
        view = memoryview(buffer)
        got = 0
        while got < len(view):
            try:
                # With a buffer, read() returns the byte count (typeshed says bytes).
                count = cast("int", self._tls.read(len(view) - got, view[got:]))
            except ssl.SSLWantReadError:
                if got:
                    return got
                # Reading may have produced a reply (a key update); send it before waiting.
                self._flush()
                if self._ended:
                    raise _truncated() from None
                self._fill()
                continue
            except ssl.SSLError as exc:
                if exc.reason == UNEXPECTED_EOF and not isinstance(exc, ssl.SSLEOFError):
                    raise _truncated() from exc
                raise
            if count == 0:
                # close_notify: OpenSSL never sees the socket's end of file.
                return got
            got += count
        return got

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Encrypt up to WIRE_CHUNK bytes of `data` and send them whole (blocking).

        Returns:
            How many bytes of `data` went out.
        """
        view = memoryview(data)[:WIRE_CHUNK]
        done = 0
        while done < len(view):
            done += self._tls.write(view[done:])
        self._flush()
        return done

    def unwrap(self) -> None:
        """Send close_notify and wait for the client's."""
        self._until_done(self._tls.unwrap)

    def abandon(self) -> None:
        """Mark the connection shut down without sending anything (refused or failed).

        OpenSSL drops from the server's cache the session of a connection freed without
        SSL_shutdown; with sessions kept on the server (tls_sessions.py) the client's control
        connection could then resume no more data connections. One SSL_shutdown call marks
        the connection shut down; its close_notify stays in memory.
        """
        with contextlib.suppress(ssl.SSLError, ValueError):
            self._tls.unwrap()
