"""Login and session verbs: USER PASS ACCT REIN QUIT (RFC 959 §4.1.1).

Rules:
- Password checks run in a worker thread (scrypt is slow on purpose) under a small limiter, so
  a login never stalls other sessions and a login flood cannot take every core.
- An unknown user costs the same hash as a known one: the reply time does not tell a guesser
  which names exist.
- The password is never logged.
"""

from __future__ import annotations

import trio

from ftpsup.logs import log_login
from ftpsup.server.fs import JailedFs
from ftpsup.server.handlers_tls import login_tls_refusal
from ftpsup.server.session import Handler, Session

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
        record = None
        if cfg.local_enable:
            record = await trio.to_thread.run_sync(
                s.ctx.users.authenticate, name, arg, limiter=s.ctx.login_limiter
            )
        if record is None:
            await _login_failed(s, name)
            return
        home, may_write, umask = record.home, record.may_write, cfg.local_umask
    try:
        s.fs = await s.fs_call(
            JailedFs, home, umask=umask, file_mode=cfg.file_open_mode, hide_ids=cfg.hide_ids
        )
    except OSError as exc:
        s.log.error("home directory %s of %s unavailable: %s", home, name, exc)
        s.pending_user = None
        await s.reply(530, "Login failed: home directory unavailable.")
        return
    s.user, s.pending_user = name, None
    s.anonymous = name == "anonymous"
    s.user_may_write = may_write
    s.umask = umask
    s.cwd = "/"
    log_login(s.log, name, s.peer_ip, ok=True)
    await s.reply(230, "Login successful.")


async def cmd_acct(s: Session, arg: str) -> None:
    await s.reply(202, "ACCT command superfluous on this server.")


async def cmd_rein(s: Session, arg: str) -> None:
    # RFC 959 §4.1.1: a transfer in progress completes first; then the session is as new.
    await s.wait_transfer()
    s.close_data_endpoints()
    s.logout()
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
