"""FileAccess: the fds a transfer reads or writes (RETR, STOR, APPE, REST+STOR, STOU).

Theory of operation: a file is opened through the jail with the flags the verb needs, then
checked on the fd that was opened (never by path): it must be a regular file, and a file about
to be written loses any setuid, setgid or sticky bit before the first byte. A new file is
created with O_EXCL, so we know it is ours and give it exactly file_mode & ~umask; a file that
already existed keeps its mode, as with vsftpd. The caller owns the fd returned and closes it.

Rules:
- Rule 5: only regular files are opened for data; FIFOs and devices are opened O_NONBLOCK so
  the check itself cannot hang. The fd handed back is blocking again.
- Rule 8 (files): no file a client writes ever carries setuid, setgid or sticky. New files get
  at most 0o777 & ~umask, and a file opened for writing (STOR over it, APPE, REST+STOR) loses
  those bits first, since a process with CAP_FSETID (root) keeps them through a write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from ftpsup.server.fs.jail import (
    O_DIR_PATH,
    PERMISSION_BITS,
    Jail,
    check_name,
    fs_error,
    join_vpath,
    reported_as,
    split_vpath,
)

_CREATE_TRIES = 8  # create-or-open retries when a file appears or vanishes between the two
UNIQUE_TRIES = 100  # STOU names tried: stem, stem.1 ... stem.99

_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


@contextlib.contextmanager
def _close_on_error(fd: int) -> Iterator[int]:
    try:
        yield fd
    except BaseException:
        os.close(fd)
        raise


class FileAccess(Jail):
    """Opening files for data transfers; the methods of JailedFs that return an fd."""

    __slots__ = ()

    def _regular(self, fd: int, vpath: str) -> int:
        """Return `fd` made blocking if it is a regular file; close it and raise otherwise."""
        with _close_on_error(fd):
            st_mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(st_mode):
                raise fs_error(errno.EISDIR, vpath)
            if not stat.S_ISREG(st_mode):
                raise fs_error(errno.EPERM, vpath, "Not a regular file")
            os.set_blocking(fd, True)
        return fd

    def open_read(self, vpath: str) -> int:
        """Open a regular file for RETR.

        Returns:
            An O_RDONLY|O_CLOEXEC fd at offset 0; the caller closes it.

        Raises:
            OSError: IsADirectoryError for a directory, EPERM for anything else not regular.
        """
        parts = split_vpath(vpath)
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        with reported_as(vpath):
            return self._regular(self._open(parts, flags), vpath)

    def open_write(self, vpath: str, *, offset: int = 0, append: bool = False) -> int:
        """Open a regular file for STOR (RFC 959), REST+STOR (RFC 3659 §5) or APPE.

        Args:
            vpath: the file; created with file_mode & ~umask when missing (not for offset > 0).
            offset: keep the first `offset` bytes, drop the rest and write from there.
            append: O_APPEND, creating the file when missing.

        Returns:
            An O_WRONLY|O_CLOEXEC fd positioned for writing; the caller closes it.

        Raises:
            ValueError: offset < 0, or offset together with append.
            OSError: EINVAL when offset is beyond the end, EISDIR, EPERM when not regular,
                ENOENT for offset > 0 on a missing file, and the usual open errors.
        """
        if offset < 0 or (offset and append):
            raise ValueError(f"bad offset {offset} (append={append})")
        parts = split_vpath(vpath)
        flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        if append:
            flags |= os.O_APPEND
        elif not offset:
            flags |= os.O_TRUNC
        with reported_as(vpath):
            try:
                fd = self._open_or_create(parts, flags, create=not offset)
            except OSError as exc:
                # A FIFO without a reader (or a device without hardware) under O_NONBLOCK.
                if exc.errno == errno.ENXIO:
                    raise fs_error(errno.EPERM, vpath, "Not a regular file") from None
                raise
            fd = self._regular(fd, vpath)
            self._drop_special_bits(fd)
            if offset:
                with _close_on_error(fd):
                    if offset > os.fstat(fd).st_size:
                        raise fs_error(errno.EINVAL, vpath, "Restart offset beyond end of file")
                    os.ftruncate(fd, offset)
                    os.lseek(fd, offset, os.SEEK_SET)
            return fd

    @staticmethod
    def _drop_special_bits(fd: int) -> None:
        """Clear setuid, setgid and sticky on a file about to be written (Rule 8)."""
        with _close_on_error(fd):
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & _SPECIAL_BITS:
                os.fchmod(fd, mode & PERMISSION_BITS)

    def _open_or_create(self, parts: list[str], flags: int, *, create: bool) -> int:
        # O_EXCL tells us whether the file is new, and only a new file gets our mode: an
        # overwritten file keeps its mode, as with vsftpd.
        for _ in range(_CREATE_TRIES):
            if create:
                try:
                    return self._set_new_mode(
                        self._open(parts, flags | os.O_CREAT | os.O_EXCL, self._new_file_mode)
                    )
                except FileExistsError:
                    pass
            try:
                return self._open(parts, flags)
            except FileNotFoundError:
                # Missing, or a dangling symlink, which O_EXCL reports as existing.
                if not create:
                    raise
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))

    @property
    def _new_file_mode(self) -> int:
        return self._file_mode & ~self._umask

    def _set_new_mode(self, fd: int) -> int:
        """Give a file we just created exactly file_mode & ~umask, whatever the process umask."""
        with _close_on_error(fd):
            os.fchmod(fd, self._new_file_mode)
        return fd

    def create_unique(self, dir_vpath: str, stem: str) -> tuple[int, str]:
        """Create a new file for STOU (RFC 959 §4.1.3): stem, stem.1, stem.2 ...

        Returns:
            (fd opened O_WRONLY, virtual path of the file created).

        Raises:
            ValueError: `stem` is not a single component.
            OSError: EEXIST when every name tried is taken, and the usual open errors.
        """
        check_name(stem)
        parts = split_vpath(dir_vpath)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with reported_as(dir_vpath), self._opened(parts, O_DIR_PATH) as dirfd:
            for i in range(UNIQUE_TRIES):
                name = f"{stem}.{i}" if i else stem
                try:
                    fd = os.open(name, flags, self._new_file_mode, dir_fd=dirfd)
                except FileExistsError:
                    continue
                return self._set_new_mode(fd), join_vpath(dir_vpath, name)
            raise fs_error(errno.EEXIST, dir_vpath, "No unique name left")
