"""The supervisor's claim on its state_dir, and the upkeep that survives the directory's removal.

Theory of operation: a supervisor owns a state_dir through two claims. The pid file
`supervisor.pid` is held with an exclusive flock for the supervisor's life (a stale file after
a crash is never locked, so it never blocks a start). The abstract socket `ctl.abstract_address`
is bound for the same life; it has no file, so it stays when the directory is removed (by an
admin, a tmpfiles clean-up, a reboot-less /run wipe). Without it, a removed state_dir would let a
second supervisor start beside the first one, and leave `ftpsup stop all` nothing to talk to.

While running, `repair` (every UPKEEP_SECONDS, in a worker thread) looks at what should be in
the directory and puts back what is gone or replaced: the directory itself, the pid file (a
fresh file, locked again), the control socket (bound again; the caller serves the new socket)
and each lease directory (`<state_dir>/ports`, handed to the instances' account). The
instances also recreate their lease directory themselves on the next PASV (ports.py), so a
passive port is never refused for long.

Rules:
1. Only what is ours is removed on exit: a pid file or socket is unlinked only when its inode
   is the one this supervisor made.
2. An abstract name held by another account is not a claim (anyone may bind one): it is
   reported and the supervisor runs without it, so a squatter cannot keep ftpsup from starting.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterable
from pathlib import Path

import attrs

from ftpsup.supervisor import ctl
from ftpsup.users.accounts import Account

UPKEEP_SECONDS = 2.0


class AlreadyRunning(Exception):
    """Another supervisor holds the pid file or the abstract socket of this state directory."""


def claim_pid_file(state_dir: Path) -> int:
    """Take the pid file's lock and write our pid; returns the descriptor to keep open.

    Raises:
        AlreadyRunning: another supervisor holds it (the message has its pid).
        OSError: the state directory cannot be used.
    """
    state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    path = ctl.pid_path(state_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise AlreadyRunning(f"a supervisor is already running (pid {other})") from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def pid_file_holder(state_dir: Path) -> int | None:
    """The pid written in a pid file that someone holds locked now; None when nobody does."""
    try:
        fd = os.open(ctl.pid_path(state_dir), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isascii() and text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path, follow_symlinks=False).st_ino
    except OSError:
        return None


@attrs.define(eq=False)
class RunDir:
    """The supervisor's pid file, control sockets and their upkeep, for one state_dir."""

    state_dir: Path
    pid_fd: int
    abstract: socket.socket | None
    refusal: str | None = None
    control: socket.socket | None = None
    _socket_inode: int | None = None

    @classmethod
    def claim(cls, state_dir: Path) -> RunDir:
        """Claim `state_dir`: lock the pid file and bind the abstract socket.

        Raises:
            AlreadyRunning: another supervisor of ours holds either claim.
            OSError: the state directory cannot be used.
        """
        pid_fd = claim_pid_file(state_dir)
        address = ctl.abstract_address(state_dir)
        refusal = None
        try:
            abstract: socket.socket | None = ctl.bind_abstract_socket(state_dir)
        except OSError as exc:
            abstract = None
            holder = ctl.holder_uid(address) if exc.errno == errno.EADDRINUSE else None
            if holder in (0, os.geteuid()):
                os.close(pid_fd)
                raise AlreadyRunning(
                    "a supervisor of this state_dir is already running, though its pid file "
                    "was gone; stop it with `ftpsup stop all`"
                ) from None
            refusal = f"abstract control socket unavailable ({exc.strerror or exc})"
            if holder is not None:
                refusal = f"abstract control socket is held by uid {holder}"
        return cls(state_dir, pid_fd, abstract, refusal)

    def bind_control(self) -> socket.socket:
        """Bind the control socket file (replacing a stale one) and remember which it is."""
        self.control = ctl.bind_control_socket(ctl.socket_path(self.state_dir))
        self._socket_inode = _inode(ctl.socket_path(self.state_dir))
        return self.control

    def repair(self, lease_dirs: Iterable[tuple[Path, Account | None]]) -> list[str]:
        """Put back what is missing from the state directory (blocking).

        Returns:
            What was recreated, or why it could not be, one line each. A new control socket
            is left in `control` for the caller to serve.
        """
        done: list[str] = []
        try:
            if not self.state_dir.is_dir():
                self.state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
                done.append(f"recreated {self.state_dir}")
            if _inode(ctl.pid_path(self.state_dir)) != os.fstat(self.pid_fd).st_ino:
                self._reclaim_pid_file()
                done.append(f"recreated {ctl.pid_path(self.state_dir)}")
            if _inode(ctl.socket_path(self.state_dir)) != self._socket_inode:
                self.bind_control()
                done.append(f"recreated {ctl.socket_path(self.state_dir)}")
            for lease_dir, account in lease_dirs:
                if not lease_dir.is_dir():
                    lease_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                    if account is not None:
                        os.chown(lease_dir, account.uid, account.gid, follow_symlinks=False)
                    done.append(f"recreated {lease_dir}")
        except (OSError, AlreadyRunning) as exc:
            done.append(f"cannot repair {self.state_dir}: {exc}")
        return done

    def _reclaim_pid_file(self) -> None:
        fd = claim_pid_file(self.state_dir)
        os.close(self.pid_fd)
        self.pid_fd = fd

    def release(self) -> None:
        """Remove our control socket and pid file (only if they are still ours), close all."""
        sock_path, pid_path = ctl.socket_path(self.state_dir), ctl.pid_path(self.state_dir)
        if self._socket_inode is not None and _inode(sock_path) == self._socket_inode:
            with contextlib.suppress(FileNotFoundError):
                sock_path.unlink()
        if _inode(pid_path) == os.fstat(self.pid_fd).st_ino:
            with contextlib.suppress(FileNotFoundError):
                pid_path.unlink()
        os.close(self.pid_fd)
        for sock in (self.abstract, self.control):
            if sock is not None:
                sock.close()
