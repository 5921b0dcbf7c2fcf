"""Jail: the home directory fd, and every virtual path resolved from it inside the home.

Theory of operation: the home is opened once, as an O_PATH directory fd, and every path a
client names is opened relative to that fd, never by its real path. The other parts of the
package (files.py, tree.py, facts.py) are subclasses of Jail and reach the disk only through
`_open`, `_opened` and `_parent`, so the rules below hold for every operation.

Rules:
- Rule 1: every path is resolved from one directory fd on the home, opened once. With Linux
  openat2(2) and RESOLVE_IN_ROOT the home acts as a chroot: "..", absolute and relative symlinks
  all resolve inside it, as under vsftpd's chroot_local_user. Without openat2 the path is walked
  one component at a time with O_NOFOLLOW, and a symlink anywhere is refused with ELOOP.
  There is never a resolve-then-open gap: the fd that was checked is the fd that is used.
- Rule 2: a virtual path is a normalised absolute POSIX string ("/", "/a/b"); anything else
  (empty or "." or ".." components, "//", a trailing "/", NUL, CR, LF) is a programming error
  and raises ValueError.
- Rule 3: an operation on a final component (mkdir, rmdir, unlink, rename, create_unique)
  opens the parent through the jail and acts on one name with the dir_fd form of the call.
- Rule 4: OS failures are plain OSError with the kernel's errno and the virtual path as the
  filename, never the real path. Refusals of our own use EPERM (not a regular file), EBUSY
  (rename or rmdir of "/"), EINVAL (REST beyond the end of the file).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from ftpsup.server.fs.openat2 import openat2

_BAD_CHARS = ("\0", "\r", "\n")
PERMISSION_BITS = 0o777  # rwx for user, group, others: never setuid, setgid or sticky (Rule 8)
O_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def fs_error(code: int, vpath: str, message: str | None = None) -> OSError:
    """An OSError of our own, naming the virtual path (Rule 4)."""
    return OSError(code, message or os.strerror(code), vpath)


@contextlib.contextmanager
def reported_as(vpath: str, vpath2: str | None = None) -> Iterator[None]:
    """Re-raise OSError naming the virtual path(s), so no real path reaches a client or log."""
    try:
        yield
    except OSError as exc:
        if exc.filename == vpath and exc.filename2 == vpath2:
            raise
        raise OSError(exc.errno, exc.strerror, vpath, None, vpath2) from None


def split_vpath(vpath: str) -> list[str]:
    """Components of a normalised virtual path; ValueError for anything else (Rule 2)."""
    if not isinstance(vpath, str) or not vpath.startswith("/"):
        raise ValueError(f"not an absolute virtual path: {vpath!r}")
    if vpath == "/":
        return []
    parts = vpath[1:].split("/")
    for part in parts:
        if part in ("", ".", "..") or any(c in part for c in _BAD_CHARS):
            raise ValueError(f"not a normalised virtual path: {vpath!r}")
    return parts


def check_name(name: str) -> None:
    """ValueError unless `name` is one path component (Rule 2)."""
    if name in ("", ".", "..") or "/" in name or any(c in name for c in _BAD_CHARS):
        raise ValueError(f"not a single path component: {name!r}")


def join_vpath(parent: str, name: str) -> str:
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


class Jail:
    """One user's home as a jail: the home fd, the settings, and path resolution.

    Args:
        root: the home directory; it becomes "/" for this user.
        umask: applied to new files and directories, whatever the process umask is.
        file_mode: mode of a new file before the umask (vsftpd's file_open_mode).
        hide_ids: report "ftp" as owner and group (vsftpd's hide_ids).
        use_openat2: True to require openat2, False for the O_NOFOLLOW walk, None to detect.

    Raises:
        OSError: the home cannot be opened, or use_openat2=True and openat2 is unavailable.
    """

    __slots__ = ("_file_mode", "_hide_ids", "_home", "_openat2", "_root_fd", "_umask")

    def __init__(
        self,
        root: str | Path,
        *,
        umask: int = 0o022,
        file_mode: int = 0o666,
        hide_ids: bool = False,
        use_openat2: bool | None = None,
    ) -> None:
        self._home = os.path.abspath(os.fspath(root))
        self._umask = umask & 0o777
        self._file_mode = file_mode & PERMISSION_BITS
        self._hide_ids = hide_ids
        self._root_fd = os.open(self._home, O_DIR_PATH)
        try:
            self._openat2 = self._probe_openat2(use_openat2)
        except BaseException:
            os.close(self._root_fd)
            raise

    def _probe_openat2(self, wanted: bool | None) -> bool:
        if wanted is False:
            return False
        try:
            os.close(openat2(self._root_fd, b".", O_DIR_PATH, 0))
        except OSError as exc:
            # ENOSYS: kernel older than 5.6; EPERM: a seccomp filter refuses the call.
            if wanted is None and exc.errno in (errno.ENOSYS, errno.EPERM):
                return False
            raise
        return True

    @property
    def root(self) -> str:
        """The home directory as an absolute path, as given (for a new JailedFs on SITE UMASK)."""
        return self._home

    @property
    def uses_openat2(self) -> bool:
        """True when paths resolve with openat2 (chroot semantics for symlinks)."""
        return self._openat2

    def close(self) -> None:
        """Close the home directory fd; later calls fail with EBADF."""
        fd, self._root_fd = self._root_fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def real_path(self, vpath: str) -> str:
        """Home + vpath as text, for xferlog only: never use it to access the file."""
        split_vpath(vpath)
        if vpath == "/":
            return self._home
        return self._home.rstrip("/") + vpath

    # -- resolution -------------------------------------------------------------------------

    def _open(self, parts: list[str], flags: int, mode: int = 0) -> int:
        """Open the jailed path made of `parts` (already valid components) with `flags`."""
        if self._openat2:
            rel = os.fsencode("/".join(parts)) if parts else b"."
            return openat2(self._root_fd, rel, flags, mode)
        return self._walk(parts, flags, mode)

    def _walk(self, parts: list[str], flags: int, mode: int) -> int:
        """The fallback: one component at a time, every step O_NOFOLLOW from a directory fd."""
        cur = self._root_fd
        try:
            for part in parts[:-1]:
                nxt = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
                if cur != self._root_fd:
                    os.close(cur)
                cur = nxt
                st_mode = os.fstat(cur).st_mode
                if stat.S_ISLNK(st_mode):
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part)
                if not stat.S_ISDIR(st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), part)
            if not parts:
                return os.open(".", flags, mode, dir_fd=cur)
            return self._open_last(cur, parts[-1], flags, mode)
        finally:
            if cur != self._root_fd:
                os.close(cur)

    @staticmethod
    def _open_last(dirfd: int, name: str, flags: int, mode: int) -> int:
        try:
            fd = os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=dirfd)
        except NotADirectoryError:
            # O_DIRECTORY|O_NOFOLLOW reports a symlink as ENOTDIR; say what it really is.
            if stat.S_ISLNK(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name) from None
            raise
        if flags & os.O_PATH and stat.S_ISLNK(os.fstat(fd).st_mode):
            # O_PATH|O_NOFOLLOW hands back the link itself instead of failing.
            os.close(fd)
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
        return fd

    @contextlib.contextmanager
    def _opened(self, parts: list[str], flags: int = os.O_PATH | os.O_CLOEXEC) -> Iterator[int]:
        fd = self._open(parts, flags)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _parent(self, vpath: str, root_errno: int) -> Iterator[tuple[int, str]]:
        """Yield (parent dir fd, final name); the final name is never "/" (Rule 3)."""
        parts = split_vpath(vpath)
        if not parts:
            raise fs_error(root_errno, vpath)
        with self._opened(parts[:-1], O_DIR_PATH) as fd:
            yield fd, parts[-1]
