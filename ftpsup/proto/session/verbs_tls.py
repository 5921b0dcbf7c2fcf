"""FTPS verbs: AUTH PBSZ PROT CCC (RFC 2228, RFC 4217), and the data-protection policy.

Rules:
- A connection is never downgraded: CCC is refused, and REIN keeps TLS on the control
  connection (it resets PBSZ/PROT and the login).
- Forcing follows vsftpd's keys: force_local_data_ssl / force_anon_data_ssl refuse PROT C with
  534 (RFC 4217 §9) once the user is known, and a transfer without PROT P with 521, as vsftpd
  does. The login side (force_*_logins_ssl) is applied at USER (verbs_login).
- The handshake itself, and dropping bytes the client sent in clear text behind AUTH, are the
  executor's (StartTls).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftpsup.proto.replies import Reply, reply
from ftpsup.proto.session.actions import LoadTls, StartTls, TlsStarted, TlsUnavailable
from ftpsup.proto.session.state import SessionState
from ftpsup.proto.session.types import Steps

if TYPE_CHECKING:
    from ftpsup.proto.session.machine import FtpSession

AUTH_MECHANISMS = frozenset({"TLS", "SSL", "TLS-C", "TLS-P"})


def start_tls(m: FtpSession, *, implicit: bool) -> Steps:
    """The handshake of AUTH TLS (after its 234) or of an implicit FTPS connection."""
    outcome = yield LoadTls()
    if isinstance(outcome, TlsUnavailable):
        if implicit:
            m.close()
        else:
            m.reply(431, "TLS is not available: the server's certificate cannot be loaded.")
        return
    if not implicit:
        m.reply(234, "Proceed with negotiation.")
    outcome = yield StartTls(implicit)
    if isinstance(outcome, TlsStarted):
        m.state.control_tls = True
    else:
        m.close()


def auth(m: FtpSession, arg: str) -> Steps | None:
    mechanism = arg.strip().upper()
    if not m.config.ssl_enable:
        m.reply(502, "TLS is not enabled on this server.")
    elif m.state.control_tls:
        m.reply(503, "Already using TLS.")
    elif mechanism not in AUTH_MECHANISMS:
        m.reply(504, "Unknown AUTH mechanism; use AUTH TLS.")
    else:
        return _auth(m, mechanism)
    return None


def _auth(m: FtpSession, mechanism: str) -> Steps:
    yield from start_tls(m, implicit=False)
    if m.state.control_tls and mechanism == "TLS-P":
        # An old convention (draft-murray-auth-ftp-ssl): TLS-P also protects the data channel.
        m.state.pbsz_set = m.state.prot_private = True


def pbsz(m: FtpSession, arg: str) -> None:
    if not m.state.control_tls:
        m.reply(503, "PBSZ needs a protected control connection: use AUTH TLS first.")
        return
    m.state.pbsz_set = True
    # RFC 4217 §8: TLS is a streaming protection, so the only buffer size is 0.
    m.reply(200, "PBSZ=0")


def prot(m: FtpSession, arg: str) -> None:
    st = m.state
    level = arg.strip().upper()
    if not st.control_tls:
        m.reply(503, "PROT needs a protected control connection: use AUTH TLS first.")
    elif level == "P" and not st.pbsz_set:
        # RFC 4217 §9 (after RFC 2228): PBSZ comes before PROT. Only PROT P is held to it:
        # clear data needs no buffer size, and Python's ftplib sends PROT C without PBSZ.
        m.reply(503, "PROT P needs PBSZ first: send PBSZ 0.")
    elif level == "P":
        st.prot_private = True
        m.reply(200, "PROT now Private.")
    elif level == "C":
        if st.logged_in and st.data_tls_forced():
            m.reply(534, "PROT C refused: this server requires encrypted data (PROT P).")
            return
        st.prot_private = False
        m.reply(200, "PROT now Clear.")
    elif level in ("S", "E"):
        m.reply(536, "Only PROT C and PROT P are supported.")
    else:
        m.reply(504, "Unknown protection level; use PROT P.")


def clear_command_channel(m: FtpSession, arg: str) -> None:
    m.reply(533, "CCC refused: the control connection stays encrypted.")


def data_tls_refusal(st: SessionState) -> Reply | None:
    """The 521 that stops a transfer when data must be encrypted and PROT P is not in effect."""
    if st.data_tls_forced() and not st.prot_private:
        return reply(521, "Data connections must be encrypted: use PBSZ 0 and PROT P.")
    return None
