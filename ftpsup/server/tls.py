"""TLS for FTPS (RFC 4217): per-connection contexts, the control stream, and data sockets.

Theory of operation: every control connection gets its own `ssl.SSLContext`, built from the
instance's certificate files in a worker thread. Ticket keys and the session cache belong to a
context, so when a data connection's handshake reports `session_reused`, the session can only
have come from *this* control connection: that is what `require_ssl_reuse` checks, for TLS
1.2 and 1.3 alike, and what stops another client from stealing the data connection.

The control channel is a stdlib `SSLSocket` in non-blocking mode driven by trio's
wait_readable/wait_writable (`SslSocketStream`); its handshake and every data-channel
handshake run in a worker thread, so the public-key work of a handshake never stalls other
sessions. Data connections are blocking `SSLSocket`s used by the copy loops in transfer.py
from worker threads: OpenSSL encrypts straight from and to the socket, with no per-record
Python pumping.

Rules:
- TLS 1.2 and 1.3 only; older versions are never enabled.
- Data connections issue no TLS 1.3 session tickets: a client that closes a data connection
  without reading tickets makes its kernel answer with RST, which can destroy the tail of an
  upload. The control connection issues them, and data connections resume from them.
- Certificates are read for each new control connection, so renewed files (certbot) take
  effect for new sessions without a restart, and running sessions keep theirs.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

import trio

from ftpsup.certs import check_pair
from ftpsup.config import InstanceConfig

# OpenSSL cipher strings name TLS 1.2 suites; TLS 1.3 suites are all AEAD and stay enabled.
CONTROL_TICKETS = 2
RECEIVE_MAX = 65536


class TlsSetupError(Exception):
    """The instance's TLS settings or files cannot make a context (bad file, bad cipher list)."""


def make_context(config: InstanceConfig) -> ssl.SSLContext:
    """A server-side context from the instance's TLS keys. Blocking: reads the key files.

    Raises:
        TlsSetupError: with a message naming the key at fault.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [
        v
        for v, enabled in (
            (ssl.TLSVersion.TLSv1_2, config.ssl_tlsv1_2),
            (ssl.TLSVersion.TLSv1_3, config.ssl_tlsv1_3),
        )
        if enabled
    ]
    if not versions:
        raise TlsSetupError("ssl_tlsv1_2, ssl_tlsv1_3: at least one TLS version must be enabled")
    ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
    try:
        ctx.set_ciphers(config.ssl_ciphers)
    except ssl.SSLError as exc:
        raise TlsSetupError(f"ssl_ciphers: {config.ssl_ciphers!r} selects no cipher") from exc
    key_file = config.rsa_private_key_file or config.rsa_cert_file
    try:
        ctx.load_cert_chain(str(config.rsa_cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"rsa_cert_file, rsa_private_key_file: cannot load {config.rsa_cert_file} "
            f"with key {key_file}: {exc}"
        ) from exc
    if config.validate_cert or config.require_cert:
        try:
            ctx.load_verify_locations(cafile=str(config.ca_certs_file))
        except (OSError, ssl.SSLError, TypeError) as exc:
            raise TlsSetupError(
                f"ca_certs_file: cannot load {config.ca_certs_file}: {exc}"
            ) from exc
        ctx.verify_mode = ssl.CERT_REQUIRED if config.require_cert else ssl.CERT_OPTIONAL
    ctx.num_tickets = CONTROL_TICKETS
    # Compression enables CRIME-style attacks; renegotiation is never needed by FTPS clients.
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    # RFC 4217 names no ALPN protocol that FTP clients send; accept "ftp" when offered.
    ctx.set_alpn_protocols(["ftp"])
    return ctx


def stop_issuing_tickets(ctx: ssl.SSLContext) -> None:
    """Called once the control handshake is done: data connections get no new tickets."""
    ctx.num_tickets = 0


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
    ) -> SslSocketStream:
        """Take over a connected plain stream and complete the server handshake in a thread.

        Raises:
            ssl.SSLError, OSError, TimeoutError: the handshake failed; the socket is closed.
        """
        # A client that connects and says nothing waits here, on the event loop, and costs
        # no thread; only a client that has begun its handshake gets one.
        with trio.move_on_after(handshake_seconds) as waiting:
            await trio.lowlevel.wait_readable(stream.socket)
        if waiting.cancelled_caught:
            await stream.aclose()
            raise TimeoutError("no TLS handshake within tls_handshake_timeout")
        plain = _detach(stream)
        tls = ctx.wrap_socket(plain, server_side=True, do_handshake_on_connect=False)
        try:
            await trio.to_thread.run_sync(
                _handshake_blocking, tls, handshake_seconds, limiter=limiter
            )
        except BaseException:
            tls.close()
            raise
        return cls(tls)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        size = max_bytes or RECEIVE_MAX
        while True:
            if self._closed:
                raise trio.ClosedResourceError
            try:
                return self.ssl_socket.recv(size)
            except ssl.SSLWantReadError:
                await trio.lowlevel.wait_readable(self.ssl_socket)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(self.ssl_socket)
            except ssl.SSLZeroReturnError:
                return b""
            except (ssl.SSLError, OSError) as exc:
                raise trio.BrokenResourceError(str(exc)) from exc

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
                    await trio.lowlevel.wait_readable(self.ssl_socket)
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


def data_handshake(
    ctx: ssl.SSLContext,
    plain: socket.socket,
    timeout: float,
    *,
    require_reuse: bool,
    issue_ticket: bool = False,
) -> ssl.SSLSocket:
    """Wrap a data connection in TLS (blocking; runs in a worker thread).

    With `issue_ticket` (downloads only) the handshake sends one fresh TLS 1.3 session ticket:
    clients that use each ticket once (curl) then have one for their next data connection.
    A downloading client reads the ticket along with the data, so no unread bytes are left to
    turn its close into an RST; an uploading client would not read it, so uploads get none.

    Raises:
        SessionNotReused: require_reuse is set and the client did not resume the control
            connection's TLS session.
        ssl.SSLError, OSError, TimeoutError: the handshake failed.
    """
    plain.setblocking(True)
    # num_tickets is copied into each new connection, and a session has one transfer at a
    # time, so setting it here affects only this data connection.
    ctx.num_tickets = 1 if issue_ticket else 0
    tls = ctx.wrap_socket(
        plain, server_side=True, do_handshake_on_connect=False, suppress_ragged_eofs=False
    )
    try:
        tls.settimeout(timeout)
        tls.do_handshake()
        if require_reuse and not tls.session_reused:
            raise SessionNotReused
        # Blocking again; the copy loops rely on SO_RCVTIMEO/SO_SNDTIMEO for their timeouts.
        tls.settimeout(None)
    except BaseException:
        tls.close()
        raise
    return tls


class SessionNotReused(Exception):
    """A TLS data connection that did not resume its control connection's session."""


def tls_problems(config: InstanceConfig, *, warn_days: int = 0) -> list[str]:
    """What stops this instance from serving TLS, as "key: problem" strings (blocking).

    Args:
        config: The instance.
        warn_days: Also report a certificate that expires within this many days (`ftpsup
            check` asks for 14). Start-up leaves it at 0: a certificate that still works must
            never keep an instance from starting or restarting.
    """
    if not config.ssl_enable:
        return []
    cert, key = config.rsa_cert_file, config.rsa_private_key_file
    problems = check_pair(cert, key, warn_days=0)
    if not problems:
        try:
            make_context(config)
        except TlsSetupError as exc:
            problems.append(str(exc))
        if warn_days:
            problems += check_pair(cert, key, warn_days=warn_days)
    return problems
