"""Login and session verbs: USER PASS ACCT REIN QUIT (RFC 959 §4.1.1).

Rules:
- Password checks run in a worker thread (scrypt is slow on purpose) under a small limiter, so
  a login never stalls other sessions and a login flood cannot take every core.
- An unknown user costs the same hash as a known one: the reply time does not tell a guesser
  which names exist.
- The password is never logged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import trio

from ftpsup.logs import log_login
from ftpsup.server.fs import JailedFs
from ftpsup.server.handlers_tls import login_tls_refusal
from ftpsup.server.session import Handler, Session
from ftpsup.users.directory import UserDirectory
from ftpsup.users.store import UserRecord

ANONYMOUS_NAMES = frozenset({"anonymous", "ftp"})


async def cmd_user(s: Session, arg: str) -> None:
    if s.logged_in:
        await s.reply(530, "Can't change to another user.")
        return
    name = arg.strip()
    refusal = login_tls_refusal(s, name.lower() in ANONYMOUS_NAMES)
    if refusal is not None:
        await s.send(refusal)
        return
    if name.lower() in ANONYMOUS_NAMES:
        if not s.ctx.config.anonymous_enable:
            await s.reply(530, "Anonymous login is not allowed on this server.")
            return
        s.pending_user = "anonymous"
    else:
        s.pending_user = name
    await s.reply(331, "Please specify the password.")


async def _login_failed(s: Session, name: str) -> None:
    cfg = s.ctx.config
    s.login_failures += 1
    log_login(s.log, name, s.peer_ip, ok=False)
    s.pending_user = None
    await trio.sleep(cfg.delay_failed_login)
    await s.reply(530, "Login incorrect.")
    if s.login_failures >= cfg.max_login_fails:
        s.log.info("too many failed logins from %s; closing the connection", s.peer_ip)
        s.closing = True


async def cmd_pass(s: Session, arg: str) -> None:
    if s.logged_in:
        await s.reply(230, "Already logged in.")
        return
    name = s.pending_user
    if name is None:
        await s.reply(503, "Login with USER first.")
        return
    cfg = s.ctx.config
    if name == "anonymous":
        if cfg.anon_root is None or (not arg.strip() and not cfg.no_anon_password):
            await _login_failed(s, name)
            return
        home, may_write, umask = cfg.anon_root, True, cfg.anon_umask
    else:
        if not cfg.local_enable:
            await _login_failed(s, name)
            return
        umask = cfg.local_umask
        open_fs = functools.partial(
            JailedFs, umask=umask, file_mode=cfg.file_open_mode, hide_ids=cfg.hide_ids
        )
        # A client logging in again with a password already verified needs no scrypt: the
        # cache check and the home's opening share one worker-thread trip.
        cached = await s.fs_call(_login_if_cached, s.ctx.users, name, arg, open_fs)
        if cached is not None:
            user, home_fs = cached
            await _logged_in(s, name, user.home, home_fs, user.may_write, umask)
            return
        record = await trio.to_thread.run_sync(
            s.ctx.users.authenticate, name, arg, limiter=s.ctx.login_limiter
        )
        if record is None:
            await _login_failed(s, name)
            return
        home, may_write = record.home, record.may_write
    opened: JailedFs | OSError
    try:
        opened = await s.fs_call(
            JailedFs, home, umask=umask, file_mode=cfg.file_open_mode, hide_ids=cfg.hide_ids
        )
    except OSError as exc:
        opened = exc
    await _logged_in(s, name, home, opened, may_write, umask)


def _login_if_cached(
    users: UserDirectory, name: str, password: str, open_fs: Callable[[Path], JailedFs]
) -> tuple[UserRecord, JailedFs | OSError] | None:
    """Blocking: the user and its opened home when the login cache proves the password."""
    record = users.check_cached(name, password)
    if record is None:
        return None
    try:
        return record, open_fs(record.home)
    except OSError as exc:
        return record, exc


async def _logged_in(
    s: Session, name: str, home: Path, opened: JailedFs | OSError, may_write: bool, umask: int
) -> None:
    if isinstance(opened, OSError):
        exc = opened
        s.log.error("home directory %s of %s unavailable: %s", home, name, exc)
        s.pending_user = None
        await s.reply(530, "Login failed: home directory unavailable.")
        return
    s.fs = opened
    s.user, s.pending_user = name, None
    if s.tls_owner is not None:
        # The sessions of this control connection now belong to this user (ssl_reuse_scope).
        s.ctx.tls.registry.logged_in(s.tls_owner, name)
    s.anonymous = name == "anonymous"
    s.user_may_write = may_write
    s.umask = umask
    s.cwd = "/"
    s.stop_login_clock()
    log_login(s.log, name, s.peer_ip, ok=True)
    await s.reply(230, "Login successful.")


async def cmd_acct(s: Session, arg: str) -> None:
    await s.reply(202, "ACCT command superfluous on this server.")


async def cmd_rein(s: Session, arg: str) -> None:
    # RFC 959 §4.1.1: a transfer in progress completes first; then the session is as new.
    await s.wait_transfer()
    s.close_data_endpoints()
    s.logout()
    s.restart_login_clock()
    s.ascii, s.rest, s.rename_from, s.epsv_all = False, 0, None, False
    # The control connection stays protected; its data protection starts over.
    s.pbsz_set = s.prot_private = False
    await s.reply(220, "Service ready for new user.")


async def cmd_quit(s: Session, arg: str) -> None:
    # RFC 959 §4.1.1: the reply for a transfer in progress is sent before the connection closes.
    await s.wait_transfer()
    await s.reply(221, "Goodbye.")
    s.closing = True


HANDLERS: dict[str, Handler] = {
    "USER": cmd_user,
    "PASS": cmd_pass,
    "ACCT": cmd_acct,
    "REIN": cmd_rein,
    "QUIT": cmd_quit,
}
