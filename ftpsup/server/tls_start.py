"""The TLS handshake of the control connection: AUTH TLS, or implicit FTPS from the start.

Rules:
- Bytes the client sent before the TLS handshake are thrown away once it completes, so
  nothing injected in plain text is ever read as if it had been protected (the STARTTLS
  injection class of bugs).
- A client may hold at most max_tls_handshakes_per_ip handshakes at once; the handshake runs
  under the login clock and tls_handshake_timeout.
"""

from __future__ import annotations

import functools
import ssl

import trio

from ftpsup.proto.lines import LineBuffer
from ftpsup.proto.session.actions import Done, TlsFailed, TlsStarted, TlsUnavailable
from ftpsup.server import workers
from ftpsup.server.session import Session
from ftpsup.server.tls import HandshakeRefused, SslSocketStream
from ftpsup.server.tls_sessions import session_id
from ftpsup.tls.contexts import TlsSetupError


async def load_tls(s: Session) -> Done | TlsUnavailable:
    """Load the instance's TLS context (LoadTls); kept for the handshake that follows."""
    try:
        s.tls_pending = await workers.run_sync(
            functools.partial(s.ctx.tls.context, s.ctx.config), s.ctx.fs_limiter
        )
    except TlsSetupError as exc:
        s.ctx.logs.tls.error("TLS unavailable: %s", exc)
        return TlsUnavailable()
    return Done()


async def start_tls(s: Session) -> TlsStarted | TlsFailed:
    """Make the control connection TLS (StartTls), with the context load_tls loaded."""
    cfg = s.ctx.config
    ctx, s.tls_pending = s.tls_pending, None
    plain = s.stream
    if ctx is None or not isinstance(plain, trio.SocketStream):
        return TlsFailed()
    # The client now expects TLS records: nothing is ever sent in clear text. Left set when
    # the login timeout cancels the handshake (control.py reads it).
    s.tls_handshaking = True
    try:
        s.stream = await SslSocketStream.wrap_server(
            plain,
            ctx,
            handshake_seconds=cfg.tls_handshake_timeout,
            limiter=s.ctx.handshake_limiter,
            per_address=s.ctx.handshakes_per_ip,
            address_key=s.client_key,
        )
    except HandshakeRefused:
        s.ctx.log_refusal(
            "max_tls_handshakes_per_ip",
            s.client_key,
            "TLS handshake with %s refused: %d handshakes from %s in progress"
            " (max_tls_handshakes_per_ip)",
            s.peer_ip,
            s.ctx.handshakes_per_ip.count(s.client_key),
            s.client_key,
        )
        return TlsFailed()
    except (ssl.SSLError, OSError, TimeoutError, ValueError) as exc:
        s.ctx.logs.tls.warning("TLS handshake with %s failed: %s", s.peer_ip, exc)
        return TlsFailed()
    s.tls_handshaking = False
    s.tls_context = ctx
    tls_socket = s.stream.ssl_socket
    registry = s.ctx.tls.registry
    s.tls_owner = registry.new_owner(s.peer_ip)
    registry.issued(s.tls_owner, session_id(tls_socket.session), control=True)
    # RFC 4217 §4: the reply to AUTH is the last plain-text exchange; anything queued behind
    # the AUTH line was not protected and is dropped (the STARTTLS injection class of bugs).
    s.lines = LineBuffer(cfg.max_command_length)
    s.ctx.logs.tls.info(
        "TLS established with %s: %s %s (control connection #%d)",
        s.peer_ip,
        tls_socket.version(),
        (tls_socket.cipher() or ("?",))[0],
        s.tls_owner.serial,
    )
    return TlsStarted()
