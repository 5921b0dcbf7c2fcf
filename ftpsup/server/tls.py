"""TLS for FTPS (RFC 4217): the control stream, data sockets, and the reuse check.

Theory of operation: all control connections of an instance share one `ssl.SSLContext`
(tls_sessions.InstanceTls, rebuilt when the certificate files change), which keeps sessions
on the server. A data connection may resume any session of that context; whether the session
it resumed is one it may use (its own control connection's, or with ssl_reuse_scope = "user"
one of the same user from the same address) is what `require_ssl_reuse` checks, for TLS 1.2
and 1.3 alike, through the session registry in tls_sessions.py. That is what stops another
client, or another user behind the same address, from taking over a data connection.

The control channel is a stdlib `SSLSocket` in non-blocking mode driven by trio's
wait_readable/wait_writable (`SslSocketStream`); its handshake and every data-channel
handshake run in a worker thread, so the public-key work of a handshake never stalls other
sessions. Data connections are `TlsDataConnection`s (tls_data.py): OpenSSL on memory BIOs
over a blocking socket, used by the copy loops in transfer/copying.py from worker threads.

Rules:
- TLS 1.2 and 1.3 only; older versions are never enabled.
- Upload data connections issue no TLS 1.3 session tickets: a client that closes a data
  connection without reading tickets makes its kernel answer with RST, which can destroy the
  tail of an upload. The control connection issues one, and download connections one each.
- Certificates are checked for each new control connection, and a changed file makes a new
  context, so renewed files (certbot) take effect for new sessions without a restart, and
  running sessions keep theirs.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl

import attrs
import trio

from ftpsup.proto.limits import KeyedCounter
from ftpsup.server import workers
from ftpsup.server.tls_data import TlsDataConnection
from ftpsup.server.tls_sessions import SessionOwner, SessionRegistry, session_id, wrap_issuing
from ftpsup.tls.contexts import CONTROL_TICKETS

RECEIVE_MAX = 65536


def _detach(stream: trio.SocketStream) -> socket.socket:
    tsock = stream.socket
    return socket.socket(tsock.family, tsock.type, tsock.proto, fileno=tsock.detach())


def _handshake_blocking(sock: ssl.SSLSocket, timeout: float) -> None:
    sock.settimeout(timeout)
    sock.do_handshake()
    sock.setblocking(False)


class SslSocketStream(trio.abc.Stream):
    """A trio Stream over a non-blocking stdlib SSLSocket (the FTPS control channel)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.ssl_socket = sock
        self._send_lock = trio.StrictFIFOLock()
        self._closed = False

    @classmethod
    async def wrap_server(
        cls,
        stream: trio.SocketStream,
        ctx: ssl.SSLContext,
        *,
        handshake_seconds: float,
        limiter: trio.CapacityLimiter,
        per_address: KeyedCounter | None = None,
        address_key: str = "",
    ) -> SslSocketStream:
        """Take over a connected plain stream and complete the server handshake in a thread.

        Args:
            stream: the plain connection; it is taken over (and closed on failure).
            ctx: this connection's TLS context.
            handshake_seconds: how long the client may take to start, and then to finish.
            limiter: the instance's handshake threads.
            per_address: handshakes in progress per client address, with their cap; one is
                counted from the client's first handshake bytes to the handshake's end.
            address_key: this client's key in `per_address`.

        Raises:
            HandshakeRefused: the client address has its cap of handshakes in progress; the
                socket is closed without a word.
            ssl.SSLError, OSError, TimeoutError: the handshake failed; the socket is closed.
        """
        # A client that connects and says nothing waits here, on the event loop, and costs
        # no thread; only a client that has begun its handshake gets one.
        with trio.move_on_after(handshake_seconds) as waiting:
            await trio.lowlevel.wait_readable(stream.socket)
        if waiting.cancelled_caught:
            await stream.aclose()
            raise TimeoutError("no TLS handshake within tls_handshake_timeout")
        # Counted only once the client talks: a silent connection holds no thread, and one
        # address must not take every thread of `limiter` with handshakes it never finishes.
        if per_address is not None and not per_address.take(address_key):
            await stream.aclose()
            raise HandshakeRefused(address_key)
        try:
            return cls(await cls._handshake(stream, ctx, handshake_seconds, limiter))
        finally:
            if per_address is not None:
                per_address.release(address_key)

    @staticmethod
    async def _handshake(
        stream: trio.SocketStream,
        ctx: ssl.SSLContext,
        handshake_seconds: float,
        limiter: trio.CapacityLimiter,
    ) -> ssl.SSLSocket:
        plain = _detach(stream)
        tls = wrap_issuing(
            ctx,
            CONTROL_TICKETS,
            lambda: ctx.wrap_socket(plain, server_side=True, do_handshake_on_connect=False),
        )
        try:
            await workers.run_sync(
                functools.partial(_handshake_blocking, tls, handshake_seconds), limiter
            )
        except BaseException:
            tls.close()
            raise
        return tls

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        size = max_bytes or RECEIVE_MAX
        while True:
            if self._closed:
                raise trio.ClosedResourceError
            try:
                return self.ssl_socket.recv(size)
            except ssl.SSLWantReadError:
                writing = False
            except ssl.SSLWantWriteError:
                writing = True
            except ssl.SSLZeroReturnError:
                return b""
            except (ssl.SSLError, OSError) as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            # Waiting outside the except clauses: inside, the exception and its traceback
            # would stay alive for as long as the session is idle.
            if writing:
                await trio.lowlevel.wait_writable(self.ssl_socket)
            else:
                await trio.lowlevel.wait_readable(self.ssl_socket)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        async with self._send_lock:
            view = memoryview(data)
            while view:
                if self._closed:
                    raise trio.ClosedResourceError
                try:
                    sent = self.ssl_socket.send(view)
                except ssl.SSLWantWriteError:
                    await trio.lowlevel.wait_writable(self.ssl_socket)
                    continue
                except ssl.SSLWantReadError:
                    # Only mid-handshake does a write need a read first; the control loop may
                    # already be waiting for input on this socket, so wait by polling.
                    try:
                        await trio.lowlevel.wait_readable(self.ssl_socket)
                    except trio.BusyResourceError:
                        await trio.sleep(0.01)
                    continue
                except (ssl.SSLError, OSError) as exc:
                    raise trio.BrokenResourceError(str(exc)) from exc
                view = view[sent:]
            await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self.ssl_socket)

    async def send_eof(self) -> None:
        raise NotImplementedError("TLS has no half-close")

    async def aclose(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        # Best effort close_notify (RFC 4217 §10: the TLS session is closed with the
        # connection); a peer that is already gone must not delay the close.
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            self.ssl_socket.unwrap()
        self.ssl_socket.close()
        await trio.lowlevel.checkpoint()


@attrs.frozen
class ReusePolicy:
    """How a data connection's session is checked: require_ssl_reuse and ssl_reuse_scope."""

    registry: SessionRegistry
    owner: SessionOwner
    required: bool
    scope: str


def data_handshake(
    ctx: ssl.SSLContext,
    plain: socket.socket,
    timeout: float,
    *,
    reuse: ReusePolicy,
    issue_ticket: bool = False,
) -> TlsDataConnection:
    """Wrap a data connection in TLS (blocking; runs in a worker thread).

    With `issue_ticket` (downloads only) the handshake sends one fresh TLS 1.3 session ticket,
    recorded as the control connection's: clients that use each ticket once (curl) then have
    one for their next data connection. A downloading client reads the ticket along with the
    data, so no unread bytes are left to turn its close into an RST; an uploading client would
    not read it, so uploads get none.

    Raises:
        SessionNotReused: reuse is required and the session resumed is not one this control
            connection may use (the exception says why).
        ssl.SSLError, OSError, TimeoutError: the handshake failed.
    """
    plain.setblocking(True)
    tls = TlsDataConnection.accept(ctx, plain, timeout, tickets=1 if issue_ticket else 0)
    if reuse.required:
        refusal = reuse.registry.check_reuse(reuse.owner, tls.resumed_id, reuse.scope, wait=timeout)
        if refusal is not None:
            tls.abandon()
            raise SessionNotReused(refusal)
    if issue_ticket:
        reuse.registry.issued(reuse.owner, session_id(tls.session))
    return tls


class HandshakeRefused(Exception):
    """A control-connection handshake over max_tls_handshakes_per_ip; the socket is closed."""


class SessionNotReused(Exception):
    """A TLS data connection that did not resume a session its control connection may use."""
