"""UserDirectory: the user store as a running instance reads it, with the login cache.

Rules:
- A running instance never loses its users to a store that vanishes or goes bad: it keeps the
  last good copy and logs an ERROR once per change of the file, and a valid store is picked
  up again as soon as it appears.
- A disabled account costs the same scrypt run as a wrong password, right password or not,
  and is never served from the login cache: timing does not tell which passwords are right
  for disabled accounts. An unknown user costs one scrypt run too (`dummy_hash`).
- The logger is "ftpsup.users": the instance routes it to its own log (server/instance.py).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from ftpsup.errors import UserStoreError
from ftpsup.users.hashing import dummy_hash, verify_password
from ftpsup.users.login_cache import LoginCache
from ftpsup.users.store import UserRecord, parse_store

logger = logging.getLogger("ftpsup.users")


class UserDirectory:
    """Read side used by a running instance: sees changes to the file without restart.

    Safe to share between worker threads. Every method blocks (stat, read, scrypt): call it
    through a worker thread (server/workers.run_sync).
    """

    def __init__(self, path: Path, *, dir_fd: int | None = None) -> None:
        """Read the store at `path`, or, with `dir_fd`, the file of that name in the directory
        open on `dir_fd` (opened before the drop, ftpsup/server/anchors.py): the directories
        above it are then never passed by name, and `path` only names the store in messages.
        """
        self.path = path
        self._dir_fd = dir_fd
        self._where: str | Path = path.name if dir_fd is not None else path
        self._mutex = threading.Lock()
        # (inode, mtime, size) of the file last read, good or bad; None while there is none.
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, UserRecord] = {}
        self._has_good_copy = False
        # The trouble last logged, so each is logged once, not at every login.
        self._trouble: str | None = None
        self._logins = LoginCache()

    def _report(self, trouble: str | None, level: int = logging.ERROR) -> None:
        if trouble == self._trouble:
            return
        if trouble is not None:
            logger.log(level, "%s", trouble)
        elif self._trouble is not None:
            logger.warning("user store %s is usable again (%d users)", self.path, len(self._users))
        self._trouble = trouble

    def _keeping(self, problem: str) -> str:
        if self._has_good_copy:
            return f"{problem}; keeping the last good copy ({len(self._users)} users)"
        return f"{problem}; no local user can log in"

    def _refresh(self) -> None:
        try:
            st = os.stat(self._where, dir_fd=self._dir_fd)
        except FileNotFoundError:
            self._vanished()
            return
        except OSError as exc:
            self._report(self._keeping(f"user store {self.path}: stat failed ({exc})"))
            return
        if (st.st_ino, st.st_mtime_ns, st.st_size) == self._stamp:
            return
        try:
            fd = os.open(self._where, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._dir_fd)
            with open(fd, "rb") as f:
                # Stamp what was read, not what was stat'ed: the file may be replaced between.
                fst = os.fstat(f.fileno())
                stamp = (fst.st_ino, fst.st_mtime_ns, fst.st_size)
                data = f.read()
        except FileNotFoundError:
            self._vanished()
            return
        except OSError as exc:
            self._report(self._keeping(f"user store {self.path}: read failed ({exc})"))
            return
        # Remember the stamp even when the file is bad, so it is parsed and logged once.
        self._stamp = stamp
        try:
            users = parse_store(self.path, data)
        except UserStoreError as exc:
            self._report(self._keeping(f"user store rejected: {exc}"))
            return
        self._logins.clear()
        self._users, self._has_good_copy = users, True
        self._report(None)

    def _vanished(self) -> None:
        # A store that was there and is gone is an accident (a bad rsync, rm): the users stay.
        # Removing users is `ftpsup user del`, which leaves a valid store behind.
        self._stamp = None
        if self._has_good_copy:
            self._report(self._keeping(f"user store {self.path} is gone"))
        else:
            self._report(self._keeping(f"user store {self.path} does not exist"), logging.WARNING)

    def lookup(self, name: str) -> UserRecord | None:
        """Return the user called `name`, disabled or not, or None; re-reads a changed file."""
        with self._mutex:
            self._refresh()
            return self._users.get(name)

    def check_cached(self, name: str, password: str) -> UserRecord | None:
        """Return the user when the login cache proves this password, without running scrypt.

        None means "not proven" (unknown user, disabled, wrong or not yet verified password):
        the caller then runs `authenticate`, which pays the full scrypt cost. Blocks on one
        stat of the store file (a changed store clears the cache first).
        """
        user = self.lookup(name)
        if user is None:
            return None
        proven = self._logins.check(name, password, user.password_hash)
        return user if proven and user.enabled else None

    def authenticate(self, name: str, password: str) -> UserRecord | None:
        """Return the user if it exists, is enabled and the password matches, else None.

        An unknown user still costs one scrypt run, so timing does not reveal which names exist,
        and a disabled user costs one whatever the password, so timing does not reveal whether
        it was right (see the rules above).
        """
        user = self.lookup(name)
        if user is None:
            verify_password(password, dummy_hash())
            return None
        if self._logins.check(name, password, user.password_hash) and user.enabled:
            return user
        # Only an enabled user's success is remembered, so a disabled account always gets here.
        if not verify_password(password, user.password_hash) or not user.enabled:
            return None
        self._logins.remember(name, password, user.password_hash)
        return user
