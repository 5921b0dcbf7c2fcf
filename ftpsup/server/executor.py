"""The executor: carries out what the session state machine asks, and feeds back the outcomes.

Theory of operation: `run_items` takes the items FtpSession returned for an event, in order.
Replies are queued on the Session (sent together at the next flush); notices are carried out
at once; the action the running command waits on (always the last item) is carried out, its
outcome goes back through FtpSession.resume, and the items that returns are run the same way,
until the command is done. Queued replies are flushed before every await, so a reply never
waits behind I/O.

A transfer runs in its own task (`_run_transfer`); its end goes back through
FtpSession.transfer_ended, whose final reply that task sends.
"""

from __future__ import annotations

import functools
import logging
import time

import trio

from ftpsup.logs import log_login
from ftpsup.proto.replies import Reply
from ftpsup.proto.session.actions import (
    NEEDS_OUTCOME,
    AbortTransfer,
    Action,
    Authenticate,
    AwaitTransfer,
    ClientGone,
    ClosePassive,
    DiscardTransfer,
    Done,
    FsCall,
    FsDone,
    FsError,
    FsOp,
    LoadTls,
    Log,
    LoginDone,
    LoginFailed,
    Logout,
    NotADirectory,
    OpenPassive,
    Outcome,
    PassiveOpened,
    PassiveRefusal,
    PassiveRefused,
    Pause,
    PrepareTransfer,
    StartTls,
    StartTransfer,
    TransferProgress,
    TransferReady,
)
from ftpsup.proto.session.types import Item
from ftpsup.server import fs_calls, listings, workers
from ftpsup.server.data import OverAddressLimit
from ftpsup.server.listings import ListingView
from ftpsup.server.login import authenticate, home_opener
from ftpsup.server.reading import wait_transfer_reading
from ftpsup.server.session import Session
from ftpsup.server.tls_start import load_tls, start_tls
from ftpsup.server.transfer.owner import RunningTransfer
from ftpsup.server.transfer.task import run_transfer


async def run_items(s: Session, items: list[Item]) -> None:
    """Carry out `items` and everything the command they belong to asks for after them."""
    while True:
        waited: Action | None = None
        for item in items:
            if isinstance(item, Reply):
                s.queue(item)
            elif isinstance(item, NEEDS_OUTCOME):
                waited = item
            else:
                _notice(s, item)
        if waited is None:
            return
        if s.idle_armed:
            # A command that waits for I/O (a password check, a listing...) is no idle time.
            s.disarm_idle_timeout()
        await s.flush()
        outcome = await _carry_out(s, waited)
        items = s.machine.resume(outcome)


def _notice(s: Session, action: Action) -> None:
    if isinstance(action, Log):
        s.log.log(logging.getLevelName(action.level.upper()), action.message, *action.args)
    elif isinstance(action, StartTransfer):
        transfer, s.prepared = s.prepared, None
        assert transfer is not None
        if action.active_target is None:
            # The transfer owns the passive listener and its lease from here.
            transfer.passive, s.passive = s.passive, None
        assert s.nursery is not None
        s.transfer = transfer
        s.nursery.start_soon(run_transfer, s, transfer, action)
    elif isinstance(action, DiscardTransfer):
        if s.prepared is not None:
            s.prepared.close()
            s.prepared = None
    elif isinstance(action, ClosePassive):
        s.close_passive()
    elif isinstance(action, LoginDone):
        if s.tls_owner is not None:
            # The sessions of this control connection now belong to this user (ssl_reuse_scope).
            s.ctx.tls.registry.logged_in(s.tls_owner, action.user)
        s.stop_login_clock()
        log_login(s.ctx.logs.auth, action.user, s.peer_ip, ok=True)
    elif isinstance(action, LoginFailed):
        log_login(s.ctx.logs.auth, action.name, s.peer_ip, ok=False)
    elif isinstance(action, Logout):
        s.logout()
        s.restart_login_clock()
    else:
        raise AssertionError(f"unknown notice {action!r}")


async def _carry_out(s: Session, action: Action) -> Outcome:
    if isinstance(action, FsCall):
        return await _fs_call(s, action)
    if isinstance(action, Authenticate):
        return await authenticate(s, action)
    if isinstance(action, Pause):
        await trio.sleep(action.seconds)
        return Done()
    if isinstance(action, OpenPassive):
        return await _open_passive(s)
    if isinstance(action, PrepareTransfer):
        return await _prepare_transfer(s, action)
    if isinstance(action, AbortTransfer):
        transfer = s.transfer
        if transfer is not None:
            transfer.abort()
            await transfer.done.wait()
        return Done()
    if isinstance(action, AwaitTransfer):
        return await _await_transfer(s, action.read_ahead)
    if isinstance(action, TransferProgress):
        return FsDone(s.transfer.progress.bytes_done if s.transfer is not None else 0)
    if isinstance(action, LoadTls):
        return await load_tls(s)
    if isinstance(action, StartTls):
        return await start_tls(s)
    raise AssertionError(f"unknown action {action!r}")


async def _await_transfer(s: Session, read_ahead: bool) -> Done | ClientGone:
    transfer = s.transfer
    if transfer is None:
        return Done()
    if read_ahead:
        if await wait_transfer_reading(s, transfer):
            return ClientGone()
        return Done()
    await transfer.done.wait()
    return Done()


def _view(s: Session) -> ListingView:
    assert s.fs is not None
    return ListingView(s.fs, s.machine.state, s.ctx.clock, s.ctx.config.use_localtime)


async def _fs_call(s: Session, call: FsCall) -> FsDone | FsError:
    if call.op is FsOp.SET_UMASK:
        return await _set_umask(s, call)
    view = _view(s)
    try:
        value = await workers.run_sync(
            functools.partial(fs_calls.run_fs_call, view, call), s.ctx.fs_limiter
        )
    except OSError as exc:
        return FsError(exc.errno or 0)
    return FsDone(value)


async def _set_umask(s: Session, call: FsCall) -> FsDone | FsError:
    """Open the home again with the new umask (JailedFs applies it to what it creates)."""
    assert s.fs is not None
    mask = call.arg
    assert isinstance(mask, int)
    old = s.fs
    try:
        new = await workers.run_sync(
            functools.partial(home_opener(s.ctx.config, mask), old.root), s.ctx.fs_limiter
        )
    except OSError as exc:
        return FsError(exc.errno or 0)
    s.fs = new
    old.close()
    return FsDone()


async def _open_passive(s: Session) -> PassiveOpened | PassiveRefused:
    try:
        endpoint = await s.open_passive_endpoint()
    except OSError as exc:
        # EMFILE/ENFILE at the descriptor limit, ENOBUFS, or a lease directory gone wrong:
        # the client may try again later, as with a full range (RFC 959: 425).
        s.ctx.logs.data.warning(
            "cannot open a passive port for %s: %s", s.peer_ip, exc.strerror or exc
        )
        return PassiveRefused(PassiveRefusal.SYSTEM)
    if isinstance(endpoint, OverAddressLimit):
        s.ctx.log_refusal(
            "max_pasv_per_ip",
            s.client_key,
            "passive port for %s refused: %s holds %d passive ports (max_pasv_per_ip)",
            s.peer_ip,
            s.client_key,
            s.ctx.config.max_pasv_per_ip,
        )
        return PassiveRefused(PassiveRefusal.OVER_ADDRESS_LIMIT)
    if endpoint is None:
        s.ctx.logs.data.warning("passive range exhausted for %s", s.peer_ip)
        return PassiveRefused(PassiveRefusal.EXHAUSTED)
    return PassiveOpened(s.ctx.pasv_host or s.local_ip, endpoint.port)


async def _prepare_transfer(
    s: Session, prep: PrepareTransfer
) -> TransferReady | FsError | NotADirectory:
    view = _view(s)
    started = time.monotonic()
    try:
        fd, listing, size, path = await workers.run_sync(
            functools.partial(fs_calls.open_for_transfer, view, prep), s.ctx.fs_limiter
        )
    except OSError as exc:
        return FsError(exc.errno or 0)
    except listings.NotADirectory:
        return NotADirectory()
    # From here the transfer owns the descriptor: DiscardTransfer, the transfer's end or the
    # session's cleanup closes it.
    s.prepared = RunningTransfer(
        prep.verb, path, fd=fd, listing=listing, size=size, offset=prep.offset, started=started
    )
    return TransferReady(size, path)
