"""Login and session verbs: USER PASS ACCT REIN QUIT (RFC 959 §4.1.1).

Rules:
- The TLS policy (force_*_logins_ssl, allow_anon_ssl) is applied at USER, before a password
  is ever sent.
- A failed login is answered after delay_failed_login, and max_login_fails of them close the
  connection. Checking the password (scrypt, in a worker thread) is the executor's job; an
  unknown user costs the same there as a known one.
- The password never reaches a log: actions carry it only to the executor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftpsup.proto.replies import Reply, reply
from ftpsup.proto.session.actions import (
    Authenticate,
    AwaitTransfer,
    ClosePassive,
    HomeUnavailable,
    LoggedIn,
    LoginDone,
    LoginFailed,
    Logout,
    Pause,
)
from ftpsup.proto.session.state import ANONYMOUS_NAMES, SessionState
from ftpsup.proto.session.types import Steps

if TYPE_CHECKING:
    from ftpsup.proto.session.machine import FtpSession


def login_tls_refusal(st: SessionState, anonymous: bool) -> Reply | None:
    """The 530 that stops USER when the TLS policy forbids this login, or None."""
    cfg = st.config
    if not cfg.ssl_enable:
        return None
    if anonymous:
        if st.control_tls and not cfg.allow_anon_ssl:
            return reply(530, "Anonymous sessions may not use encryption.")
        if not st.control_tls and cfg.force_anon_logins_ssl:
            return reply(530, "Anonymous sessions must use encryption: use AUTH TLS first.")
        return None
    if not st.control_tls and cfg.force_local_logins_ssl:
        return reply(530, "Non-anonymous sessions must use encryption: use AUTH TLS first.")
    return None


def user(m: FtpSession, arg: str) -> None:
    st = m.state
    if st.logged_in:
        m.reply(530, "Can't change to another user.")
        return
    # A refused USER leaves no name behind: the PASS after it is 503 (as vsftpd empties it).
    st.pending_user = None
    name = arg.strip()
    anonymous = name.lower() in ANONYMOUS_NAMES
    refusal = login_tls_refusal(st, anonymous)
    if refusal is not None:
        m.send(refusal)
        return
    if anonymous:
        if not m.config.anonymous_enable:
            m.reply(530, "Anonymous login is not allowed on this server.")
            return
        st.pending_user = "anonymous"
    else:
        st.pending_user = name
    m.reply(331, "Please specify the password.")


def _failed(m: FtpSession, name: str) -> Steps:
    st = m.state
    st.login_failures += 1
    m.act(LoginFailed(name))
    st.pending_user = None
    yield Pause(m.config.delay_failed_login)
    m.reply(530, "Login incorrect.")
    if st.login_failures >= m.config.max_login_fails:
        m.log("info", "too many failed logins from %s; closing the connection", st.peer_ip)
        m.close()


def password(m: FtpSession, arg: str) -> Steps | None:
    st = m.state
    if st.logged_in:
        m.reply(230, "Already logged in.")
        return None
    name = st.pending_user
    if name is None:
        m.reply(503, "Login with USER first.")
        return None
    cfg = m.config
    if name == "anonymous":
        if cfg.anon_root is None or (not arg.strip() and not cfg.no_anon_password):
            return _failed(m, name)
        return _login(m, name, arg, anonymous=True, umask=cfg.anon_umask)
    if not cfg.local_enable:
        return _failed(m, name)
    return _login(m, name, arg, anonymous=False, umask=cfg.local_umask)


def _login(m: FtpSession, name: str, password: str, *, anonymous: bool, umask: int) -> Steps:
    st = m.state
    outcome = yield Authenticate(name, password, anonymous, umask)
    if isinstance(outcome, HomeUnavailable):
        st.pending_user = None
        m.reply(530, "Login failed: home directory unavailable.")
        return
    if not isinstance(outcome, LoggedIn):
        yield from _failed(m, name)
        return
    st.user, st.pending_user = name, None
    st.anonymous = anonymous
    # Anonymous writes follow the anon_* keys (SessionState.write_allowed).
    st.user_may_write = True if anonymous else outcome.may_write
    st.umask = umask
    st.cwd = "/"
    m.act(LoginDone(name))
    m.reply(230, "Login successful.")


def account(m: FtpSession, arg: str) -> None:
    m.reply(202, "ACCT command superfluous on this server.")


def reinitialize(m: FtpSession, arg: str) -> None:
    # RFC 959 §4.1.1: a transfer in progress completes first (the machine waits for it
    # before REIN runs); then the session is as new.
    st = m.state
    st.forget_data_setup()
    m.act(ClosePassive())
    st.logout()
    m.act(Logout())
    st.ascii, st.rest, st.rename_from, st.epsv_all = False, 0, None, False
    # The control connection stays protected; its data protection starts over.
    st.pbsz_set = st.prot_private = False
    m.reply(220, "Service ready for new user.")


def quit_(m: FtpSession, arg: str) -> Steps | None:
    # RFC 959 §4.1.1: the reply for a transfer in progress is sent before the connection closes.
    if m.state.transfer is not None:
        return _quit_after_transfer(m)
    m.reply(221, "Goodbye.")
    m.close()
    return None


def _quit_after_transfer(m: FtpSession) -> Steps:
    yield AwaitTransfer(read_ahead=False)
    m.reply(221, "Goodbye.")
    m.close()
