"""PortAllocator: hands out passive data ports from one range shared by every instance process.

Rules:
1. A port is leased to at most one session at a time, across every process on the machine.
   Each port has a lock file `<lease_dir>/<port>.lock`; a lease is an open file description
   holding `flock(LOCK_EX | LOCK_NB)` on it. flock locks belong to the open file description,
   so two leases inside one process exclude each other just as two processes do.
2. A crashed process needs no clean-up: the kernel drops its flock locks when its descriptors
   close, which it does even for SIGKILL. Lock files stay on disk; only the lock matters.
3. Never a port outside [min_port, max_port] (the firewall opens only that range) and never a
   wait: a port someone else locks is skipped at once, and a full range is answered with None
   so the caller can reply 425.
4. Ports held by other programs are found by the caller's bind (EADDRINUSE); it releases that
   lease and asks again through `lease_excluding`, naming the busy ports.
5. Round robin: each allocator resumes after the last port it handed out, so a port just
   closed (perhaps still in TIME_WAIT) is the last one reused.
6. Descriptors are opened O_CLOEXEC so a spawned child never inherits, and so never keeps
   alive, a lease it does not know about.
7. A lease directory removed under a running allocator (state_dir deleted) is created again
   by the next lease, as far as this process may; otherwise the lease raises OSError.

Every method may block briefly on file I/O: async callers run them in a worker thread. One
allocator may be shared by several threads.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from types import TracebackType

import attrs

_LOCK_SUFFIX = ".lock"
_HOLDER_TEXT_LIMIT = 256
_HOLDER_WIDTH = 64


# How long a lease attempt waits before looking again at ports that seemed taken.
PROBE_RETRY_SECONDS = 0.002


@attrs.define(eq=False)
class PortLease:
    """One leased passive port; the lease lasts until `release` (or the process ends).

    Use it as a context manager, or call `release` when the data connection is closed.
    """

    port: int
    _fd: int | None = attrs.field(default=None, repr=False, alias="fd")
    _on_release: Callable[[], None] | None = attrs.field(
        default=None, repr=False, alias="on_release"
    )
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    @property
    def held(self) -> bool:
        """True until the lease is released."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close the lease file; calling it again does nothing."""
        with self._lock:
            fd, self._fd = self._fd, None
            on_release, self._on_release = self._on_release, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            if on_release is not None:
                on_release()

    def __enter__(self) -> PortLease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@attrs.frozen
class AllocatorStatistics:
    """Counters of one allocator, for `ftpsup status`.

    `leased_now` and `granted` count this allocator's leases only; `refused` counts the
    requests answered with None because no port of the range was free.
    """

    range_size: int
    leased_now: int
    granted: int
    refused: int


_MEMORY_FILE_SYSTEMS = frozenset({"tmpfs", "ramfs"})
_MOUNT_ESCAPE = re.compile(r"\\([0-7]{3})")


def file_system_type(path: str, mounts: str) -> str | None:
    """The type of the file system holding the absolute, resolved `path`.

    Args:
        path: an absolute path without symlinks (Path.resolve()).
        mounts: the text of /proc/self/mounts, whose last matching mount point wins.
    """
    found: tuple[int, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        # Spaces and other odd bytes in mount points are written as octal escapes (\040).
        point = _MOUNT_ESCAPE.sub(lambda m: chr(int(m[1], 8)), fields[1])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        # Later mounts stack over earlier ones on the same point, hence >=.
        if inside and (found is None or len(point) >= found[0]):
            found = (len(point), fields[2])
    return found[1] if found else None


class PortAllocator:
    """Leases ports of [min_port, max_port] through per-port lock files in `lease_dir`."""

    def __init__(self, lease_dir: Path, min_port: int, max_port: int, *, owner: str) -> None:
        """Prepare the lease directory (created 0700 when missing).

        Args:
            lease_dir: directory of the per-port lock files, shared by every instance.
            min_port: first port of the passive range.
            max_port: last port of the passive range (inclusive).
            owner: name written into each lease file, usually the instance name.

        Raises:
            ValueError: the range is empty or outside 1..65535.
            OSError: the lease directory cannot be created.
        """
        if not 1 <= min_port <= max_port <= 65535:
            raise ValueError(f"bad passive port range {min_port}-{max_port}")
        if any(c.isspace() for c in owner) or not owner:
            raise ValueError(f"owner must be one word: {owner!r}")
        self._dir = lease_dir
        # Lock file paths as text: a pathlib join per lease cost more than the lock itself.
        self._prefix = os.path.join(lease_dir, "")
        self._min = min_port
        self._max = max_port
        self._owner = owner
        self._lock = threading.Lock()
        self._next = min_port
        self._leased_now = 0
        self._granted = 0
        self._refused = 0
        # The mode only applies when the directory is new; an admin's choice is kept.
        lease_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def in_memory(self) -> bool:
        """Whether the lease files live on tmpfs or ramfs (blocking; call at start-up).

        There a lease never waits for a disk, so the event loop may take one itself instead
        of paying a worker-thread round trip on every PASV/EPSV.
        """
        try:
            with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
                text = mounts.read()
        except OSError:
            return False
        return file_system_type(str(self._dir.resolve()), text) in _MEMORY_FILE_SYSTEMS

    def create_lock_files(self) -> int:
        """Create the range's lock files that do not exist yet (blocking); returns how many.

        Meant for instance start: on a disk file system, creating a file is most of what a
        port's first lease costs (measured on ext4), and a burst of new sessions would pay it
        once per port. Leases still create a missing file themselves.

        Raises:
            OSError: a lock file cannot be created (the lease directory is not writable).
        """
        created = 0
        for port in range(self._min, self._max + 1):
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
            try:
                fd = os.open(self._path(port), flags, 0o600)
            except FileExistsError:
                continue
            os.close(fd)
            created += 1
        return created

    @property
    def min_port(self) -> int:
        return self._min

    @property
    def max_port(self) -> int:
        return self._max

    def lease(self) -> PortLease | None:
        """Lease the next free port of the range.

        Returns:
            The lease, or None when every port of the range is leased (the caller replies 425).

        Raises:
            OSError: a lock file cannot be opened (for example, lease_dir is not writable).
        """
        return self.lease_excluding(())

    def lease_excluding(
        self, skip: Collection[int], *, second_look: bool = True
    ) -> PortLease | None:
        """Lease the next free port of the range that is not in `skip`.

        Each port is tried at most once, starting after the last port this allocator handed
        out; a port locked by anyone is passed over without waiting.

        Args:
            skip: ports the caller found busy (EADDRINUSE) during this attempt.
            second_look: when every port seemed taken, look again at them after a short
                sleep (a status probe may have held one for an instant). Without it the call
                never sleeps, and None may mean "try again with the second look".

        Returns:
            The lease, or None when no port outside `skip` is free.

        Raises:
            OSError: a lock file cannot be opened (for example, lease_dir is not writable).
        """
        with self._lock:
            start = self._next
        size = self._max - self._min + 1
        # Lazily: the first free port is usually the first one tried, and building the whole
        # range as a list cost ~0.4 ms per lease on a 4000-port range.
        candidates: Iterable[int] = (
            port
            for step in range(size)
            if (port := self._min + (start - self._min + step) % size) not in skip
        )
        # A second, later look at the ports that seemed taken: a status probe
        # (leases_in_use) holds a port's lock for microseconds, and must not turn into a 425.
        for attempt in range(2 if second_look else 1):
            if attempt:
                time.sleep(PROBE_RETRY_SECONDS)
            busy: list[int] = []
            for port in candidates:
                fd = self._try_lock(port)
                if fd is None:
                    busy.append(port)
                    continue
                with self._lock:
                    self._next = port + 1 if port < self._max else self._min
                    self._leased_now += 1
                    self._granted += 1
                return PortLease(port, fd=fd, on_release=self._released)
            candidates = busy
        if second_look:
            # A first look alone is retried by the caller: only the last attempt counts.
            with self._lock:
                self._refused += 1
        return None

    def leases_in_use(self) -> list[tuple[int, str]]:
        """List the ports of the range that anyone holds now, with the holder's text.

        A shared, non-blocking probe lock is taken and dropped at once, so holders are never
        disturbed; a lease attempt that coincides with the probe looks at that port again.

        Returns:
            (port, "<owner> <pid> <unix time>") pairs in port order; the text is empty when
            the holder has not written it yet.
        """
        found: list[tuple[int, str]] = []
        for port in range(self._min, self._max + 1):
            try:
                # O_NONBLOCK: the directory is the instances' account's, and a FIFO planted in
                # it would block a plain O_RDONLY open (the supervisor's probe) for ever.
                fd = os.open(
                    self._path(port), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
                )
            except OSError:
                continue  # missing, or not a file we would open (a planted symlink: ELOOP)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue  # not a lock file of ours: nothing to read (pread on a FIFO fails)
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    text = os.pread(fd, _HOLDER_TEXT_LIMIT, 0).decode("utf-8", "replace")
                    # The holder line is rewritten in place, so a longer line written by an
                    # earlier holder may follow it: only the first line counts.
                    found.append((port, text.split("\n", 1)[0].strip()))
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return found

    def statistics(self) -> AllocatorStatistics:
        """Counters of this allocator (not of other processes)."""
        with self._lock:
            return AllocatorStatistics(
                range_size=self._max - self._min + 1,
                leased_now=self._leased_now,
                granted=self._granted,
                refused=self._refused,
            )

    def _path(self, port: int) -> str:
        return f"{self._prefix}{port}{_LOCK_SUFFIX}"

    def _try_lock(self, port: int) -> int | None:
        # O_NOFOLLOW: a symlink planted in the lease directory must not make us overwrite
        # some other file.
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            fd = os.open(self._path(port), flags, 0o600)
        except FileNotFoundError:
            # Rule 7: the directory itself is gone.
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._path(port), flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            # Overwritten in place at a fixed width, never truncated: the file keeps its size
            # and its block. Truncate-then-write made ext4 free and allocate a block, and start
            # writeback at close, on every lease: ~130 us of CPU per lease, ~14 us without.
            holder = f"{self._owner} {os.getpid()} {int(time.time())}"
            os.pwrite(fd, holder.ljust(_HOLDER_WIDTH - 1).encode() + b"\n", 0)
        except OSError:
            # The holder text is only for status output; a full disk must not cost the lease.
            pass
        return fd

    def _released(self) -> None:
        with self._lock:
            self._leased_now -= 1
