"""AddressSlots: how many passive ports one client address holds, counted across instances.

The passive range is shared by every instance through lock files (ports.py), so a cap per
client address kept in one process's memory would let a client take the cap from each
instance. The cap is counted where the leases are: in the lease directory.

Theory of operation: a client address key K (ftpsup.proto.limits.address_key) with a cap of
N has N slot files, `<lease_dir>/client-<K>.<i>.lock` for i < N. A passive lease for K also
holds one of them, locked with flock(LOCK_EX | LOCK_NB), until the lease ends; when all N are
locked by anyone, K is at its cap. This follows the rules of ports.py:

Rules:
1. A slot is held by at most one lease, across every process: flock locks belong to the open
   file description.
2. A crashed process needs no clean-up: the kernel drops its locks.
3. Never a wait: a locked slot is passed over, and no free slot is answered with None.
4. The directory holds only the slot files of current leases: the holder unlinks its file
   while it still holds the lock, then unlocks. A taker may lock a file just unlinked (it
   opened it before the unlink), so after locking it checks that the path still names the
   file it locked, and otherwise tries again; a file at the path is thus only ever held by
   the holder of its lock.
5. Instances that give one key different caps share the slots they have in common: a cap of
   N means "slots 0..N-1 are all held". Set max_pasv_per_ip once, in _shared.toml.

Every method may block briefly on file I/O: async callers run them in a worker thread, or on
the event loop when the lease directory is on tmpfs (as passive leases are).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
from pathlib import Path

import attrs

# What address_key returns for an address: IPv4, or an IPv6 network in lowercase.
_ADDRESS_KEY = re.compile(r"[0-9a-f.:/]{1,64}")
# A slot whose file is swapped under us this many times in a row is taken as busy.
_RELOCK_ATTEMPTS = 3


def slot_file_stem(key: str) -> str:
    """A file name part for an address key: readable for addresses, hashed otherwise.

    ":" and "/" become "_" and "-", which no address key holds, so the mapping is one-to-one.
    """
    if _ADDRESS_KEY.fullmatch(key):
        return key.replace(":", "_").replace("/", "-")
    return "h" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@attrs.define(eq=False)
class AddressSlot:
    """One held slot of a client address; `release` (once, or more: no effect) frees it."""

    path: Path
    _fd: int | None = attrs.field(alias="fd", repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Unlinked while still locked: see rule 4.
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a file left behind only costs a directory entry
        finally:
            os.close(fd)


class AddressSlots:
    """The per-address slot files of one lease directory (the passive range's)."""

    def __init__(self, lease_dir: Path) -> None:
        self._dir = lease_dir
        self._lock = threading.Lock()
        self._refused = 0

    @property
    def refused(self) -> int:
        """How many takes this object answered with None (the cap was reached)."""
        with self._lock:
            return self._refused

    def take(self, key: str, limit: int) -> AddressSlot | None:
        """Hold one of the `limit` slots of `key`.

        Returns:
            The slot, or None when all `limit` slots are held (the cap is reached).

        Raises:
            ValueError: `limit` is below 1.
            OSError: a slot file cannot be opened (the lease directory is not writable).
        """
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, not {limit}")
        try:
            return self._take(slot_file_stem(key), limit)
        except FileNotFoundError:
            # The lease directory went away (a cleaned /run): make it again, 0700.
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            return self._take(slot_file_stem(key), limit)

    def _take(self, stem: str, limit: int) -> AddressSlot | None:
        for index in range(limit):
            slot = self._try_slot(self._dir / f"client-{stem}.{index}.lock")
            if slot is not None:
                return slot
        with self._lock:
            self._refused += 1
        return None

    def held_by(self, key: str, limit: int) -> int:
        """How many of the first `limit` slots of `key` anyone holds now (tests, diagnostics).

        Probes with a shared lock taken and dropped at once: holders are not disturbed, but a
        take that coincides with the probe may find that slot busy. Not for the serving path.
        """
        stem = slot_file_stem(key)
        held = 0
        for index in range(limit):
            try:
                fd = os.open(
                    self._dir / f"client-{stem}.{index}.lock",
                    os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                )
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                held += 1
            finally:
                os.close(fd)
        return held

    def _try_slot(self, path: Path) -> AddressSlot | None:
        for _ in range(_RELOCK_ATTEMPTS):
            # O_NOFOLLOW: a symlink planted in the lease directory must not be followed.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = os.fstat(fd)
                try:
                    named = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    named = None
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            if named is not None and (named.st_dev, named.st_ino) == (
                locked.st_dev,
                locked.st_ino,
            ):
                return AddressSlot(path, fd=fd)
            # The holder unlinked this file between our open and our lock: look again.
            os.close(fd)
        return None
