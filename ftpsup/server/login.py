"""Authenticate: check a password (or admit anonymous) and open the home.

Rules:
- Password checks run in a worker thread (scrypt is slow on purpose) under a small limiter, so
  a login never stalls other sessions and a login flood cannot take every core.
- An unknown user costs the same hash as a known one: the reply time does not tell a guesser
  which names exist (UserDirectory.authenticate).
- The password is never logged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from ftpsup.config.schema import InstanceConfig
from ftpsup.proto.session.actions import Authenticate, HomeUnavailable, LoggedIn, LoginRejected
from ftpsup.server import workers
from ftpsup.server.fs import JailedFs
from ftpsup.server.session import Session
from ftpsup.users.directory import UserDirectory
from ftpsup.users.store import UserRecord


async def authenticate(
    s: Session, request: Authenticate
) -> LoggedIn | LoginRejected | HomeUnavailable:
    cfg = s.ctx.config
    open_fs = home_opener(cfg, request.umask)
    home: Path
    if request.anonymous:
        assert cfg.anon_root is not None
        home, may_write = cfg.anon_root, True
        opened = await _open_home(s, open_fs, home)
    else:
        # A client logging in again with a password already verified needs no scrypt: the
        # cache check and the home's opening share one worker-thread trip.
        cached = await workers.run_sync(
            functools.partial(
                _login_if_cached, s.ctx.users, request.name, request.password, open_fs
            ),
            s.ctx.fs_limiter,
        )
        if cached is not None:
            record, opened = cached
            home, may_write = record.home, record.may_write
        else:
            found = await workers.run_sync(
                functools.partial(s.ctx.users.authenticate, request.name, request.password),
                s.ctx.login_limiter,
            )
            if found is None:
                return LoginRejected()
            home, may_write = found.home, found.may_write
            opened = await _open_home(s, open_fs, home)
    if isinstance(opened, OSError):
        s.ctx.logs.auth.error("home directory %s of %s unavailable: %s", home, request.name, opened)
        return HomeUnavailable()
    s.fs = opened
    return LoggedIn(may_write)


def home_opener(cfg: InstanceConfig, umask: int) -> Callable[[str | Path], JailedFs]:
    """Blocking, for a worker thread: opens a home as a jail with the instance's file options
    and `umask` (at login, and again for SITE UMASK)."""
    return functools.partial(
        JailedFs, umask=umask, file_mode=cfg.file_open_mode, hide_ids=cfg.hide_ids
    )


async def _open_home(
    s: Session, open_fs: Callable[[str | Path], JailedFs], home: Path
) -> JailedFs | OSError:
    try:
        return await workers.run_sync(functools.partial(open_fs, home), s.ctx.fs_limiter)
    except OSError as exc:
        return exc


def _login_if_cached(
    users: UserDirectory, name: str, password: str, open_fs: Callable[[str | Path], JailedFs]
) -> tuple[UserRecord, JailedFs | OSError] | None:
    """Blocking: the user and its opened home when the login cache proves the password."""
    record = users.check_cached(name, password)
    if record is None:
        return None
    try:
        return record, open_fs(record.home)
    except OSError as exc:
        return record, exc
