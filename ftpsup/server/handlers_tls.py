"""FTPS verbs: AUTH PBSZ PROT CCC (RFC 2228, RFC 4217), and the TLS policy checks.

Rules:
- Bytes the client sent before the TLS handshake are thrown away once it completes, so
  nothing injected in plain text is ever read as if it had been protected.
- A connection is never downgraded: CCC is refused, and REIN keeps TLS on the control
  connection (it resets PBSZ/PROT and the login).
- Forcing follows vsftpd's keys: force_local_logins_ssl / force_anon_logins_ssl refuse USER
  before AUTH TLS with 530; force_local_data_ssl / force_anon_data_ssl refuse PROT C with 534
  (RFC 4217 §9) once the user is known, and a transfer without PROT P with 521, as vsftpd does.
"""

from __future__ import annotations

import ssl

import trio

from ftpsup.proto.lines import LineBuffer
from ftpsup.proto.replies import Reply, reply
from ftpsup.server.session import Handler, Session
from ftpsup.server.tls import HandshakeRefused, SslSocketStream
from ftpsup.server.tls_sessions import session_id
from ftpsup.tls.contexts import TlsSetupError

AUTH_MECHANISMS = frozenset({"TLS", "SSL", "TLS-C", "TLS-P"})


async def start_tls(s: Session, *, implicit: bool) -> bool:
    """Make the control connection TLS. False when it failed (the session is then closing)."""
    cfg = s.ctx.config
    # Whether the client now expects TLS records: then nothing is ever sent in clear text.
    # Left set when the login timeout cancels the handshake (control.py reads it).
    s.tls_handshaking = implicit
    try:
        ctx = await trio.to_thread.run_sync(s.ctx.tls.context, cfg, limiter=s.ctx.fs_limiter)
    except TlsSetupError as exc:
        s.log.error("TLS unavailable: %s", exc)
        if implicit:
            s.closing = True
        else:
            await s.reply(431, "TLS is not available: the server's certificate cannot be loaded.")
        return False
    if not implicit:
        await s.reply(234, "Proceed with negotiation.")
    plain = s.stream
    if not isinstance(plain, trio.SocketStream):
        s.closing = True
        return False
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
        s.closing = True
        return False
    except (ssl.SSLError, OSError, TimeoutError, ValueError) as exc:
        s.log.warning("TLS handshake with %s failed: %s", s.peer_ip, exc)
        s.closing = True
        return False
    s.tls_handshaking = False
    s.tls_context = ctx
    tls_socket = s.stream.ssl_socket
    registry = s.ctx.tls.registry
    s.tls_owner = registry.new_owner(s.peer_ip)
    registry.issued(s.tls_owner, session_id(tls_socket.session), control=True)
    # RFC 4217 §4: the reply to AUTH is the last plain-text exchange; anything queued behind
    # the AUTH line was not protected and is dropped (the STARTTLS injection class of bugs).
    s.lines = LineBuffer(cfg.max_command_length)
    s.log.info(
        "TLS established with %s: %s %s (control connection #%d)",
        s.peer_ip,
        tls_socket.version(),
        (tls_socket.cipher() or ("?",))[0],
        s.tls_owner.serial,
    )
    return True


async def cmd_auth(s: Session, arg: str) -> None:
    mechanism = arg.strip().upper()
    if not s.ctx.config.ssl_enable:
        await s.reply(502, "TLS is not enabled on this server.")
    elif s.control_tls:
        await s.reply(503, "Already using TLS.")
    elif mechanism not in AUTH_MECHANISMS:
        await s.reply(504, "Unknown AUTH mechanism; use AUTH TLS.")
    elif await start_tls(s, implicit=False) and mechanism == "TLS-P":
        # An old convention (draft-murray-auth-ftp-ssl): TLS-P also protects the data channel.
        s.pbsz_set = s.prot_private = True


async def cmd_pbsz(s: Session, arg: str) -> None:
    if not s.control_tls:
        await s.reply(503, "PBSZ needs a protected control connection: use AUTH TLS first.")
        return
    s.pbsz_set = True
    # RFC 4217 §8: TLS is a streaming protection, so the only buffer size is 0.
    await s.reply(200, "PBSZ=0")


def data_tls_forced(s: Session) -> bool:
    cfg = s.ctx.config
    if not cfg.ssl_enable:
        return False
    return cfg.force_anon_data_ssl if s.anonymous else cfg.force_local_data_ssl


async def cmd_prot(s: Session, arg: str) -> None:
    level = arg.strip().upper()
    if not s.control_tls:
        await s.reply(503, "PROT needs a protected control connection: use AUTH TLS first.")
    elif level == "P" and not s.pbsz_set:
        # RFC 4217 §9 (after RFC 2228): PBSZ comes before PROT. Only PROT P is held to it:
        # clear data needs no buffer size, and Python's ftplib sends PROT C without PBSZ.
        await s.reply(503, "PROT P needs PBSZ first: send PBSZ 0.")
    elif level == "P":
        s.prot_private = True
        await s.reply(200, "PROT now Private.")
    elif level == "C":
        if s.logged_in and data_tls_forced(s):
            await s.reply(534, "PROT C refused: this server requires encrypted data (PROT P).")
            return
        s.prot_private = False
        await s.reply(200, "PROT now Clear.")
    elif level in ("S", "E"):
        await s.reply(536, "Only PROT C and PROT P are supported.")
    else:
        await s.reply(504, "Unknown protection level; use PROT P.")


async def cmd_ccc(s: Session, arg: str) -> None:
    await s.reply(533, "CCC refused: the control connection stays encrypted.")


def login_tls_refusal(s: Session, anonymous: bool) -> Reply | None:
    """The 530 that stops USER when the TLS policy forbids this login, or None."""
    cfg = s.ctx.config
    if not cfg.ssl_enable:
        return None
    if anonymous:
        if s.control_tls and not cfg.allow_anon_ssl:
            return reply(530, "Anonymous sessions may not use encryption.")
        if not s.control_tls and cfg.force_anon_logins_ssl:
            return reply(530, "Anonymous sessions must use encryption: use AUTH TLS first.")
        return None
    if not s.control_tls and cfg.force_local_logins_ssl:
        return reply(530, "Non-anonymous sessions must use encryption: use AUTH TLS first.")
    return None


def data_tls_refusal(s: Session) -> Reply | None:
    """The 521 that stops a transfer when data must be encrypted and PROT P is not in effect."""
    if data_tls_forced(s) and not s.prot_private:
        return reply(521, "Data connections must be encrypted: use PBSZ 0 and PROT P.")
    return None


HANDLERS: dict[str, Handler] = {
    "AUTH": cmd_auth,
    "PBSZ": cmd_pbsz,
    "PROT": cmd_prot,
    "CCC": cmd_ccc,
}
