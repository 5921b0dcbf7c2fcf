"""JailedFs: one user's home directory as a jail, enforced by the kernel at every open.

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
- Rule 5: only regular files are opened for data; FIFOs and devices are opened O_NONBLOCK so
  the check itself cannot hang.
- Rule 6: chmod and MFMT act through /proc/self/fd/N on an O_PATH fd, so a symlink is followed
  only inside the jail. /proc must be mounted.
- Rule 7: the object keeps no per-call state and is shared by worker threads; every method
  blocks and must run in a thread (trio.to_thread.run_sync).
- Rule 8: no file a client writes ever carries setuid, setgid or sticky: new files and
  directories get at most 0o777 & ~umask, chmod keeps `mode & 0o777` (as vsftpd), and a file
  opened for writing (STOR over it, APPE, REST+STOR) loses those bits first, since a process
  with CAP_FSETID (root) keeps them through a write. One exception, on directories only: a
  directory made inside a setgid directory keeps the setgid bit the kernel gives it, and
  chmod of a directory keeps a setgid bit it already has (as coreutils' chmod does). That is
  how Linux group-shared trees work (new entries take the directory's group); on a directory
  the bit grants no privilege, it only picks the group of new entries, which the admin chose
  by setting it on the parent. A file never keeps setgid; nothing ever gains setuid/sticky.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import grp
import os
import platform
import pwd
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from ftpsup.proto.facts import FileFacts, FileKind

# openat2 is 437 on these machines; elsewhere the walk is used rather than guess a number.
_SYS_OPENAT2 = 437
_OPENAT2_MACHINES = frozenset({"x86_64", "aarch64", "arm64"})
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_EAGAIN_TRIES = 8  # openat2 answers EAGAIN when a concurrent rename races a ".." step
_CREATE_TRIES = 8  # create-or-open retries when a file appears or vanishes between the two
UNIQUE_TRIES = 100  # STOU names tried: stem, stem.1 ... stem.99

_BAD_CHARS = ("\0", "\r", "\n")
_PERMISSION_BITS = 0o777  # rwx for user, group, others: never setuid, setgid or sticky (Rule 8)
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
_O_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def _load_syscall() -> Callable[..., int] | None:
    if platform.machine() not in _OPENAT2_MACHINES:
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    func.restype = ctypes.c_long
    func.argtypes = [
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.POINTER(_OpenHow),
        ctypes.c_size_t,
    ]
    syscall: Callable[..., int] = func
    return syscall


_syscall = _load_syscall()


def _openat2(dirfd: int, path: bytes, flags: int, mode: int) -> int:
    if _syscall is None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    how = _OpenHow(flags, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    err = errno.EAGAIN
    for _ in range(_EAGAIN_TRIES):
        fd = int(_syscall(_SYS_OPENAT2, dirfd, path, ctypes.byref(how), ctypes.sizeof(how)))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            break
    raise OSError(err, os.strerror(err))


def _error(code: int, vpath: str, message: str | None = None) -> OSError:
    return OSError(code, message or os.strerror(code), vpath)


@contextlib.contextmanager
def _reported_as(vpath: str, vpath2: str | None = None) -> Iterator[None]:
    """Re-raise OSError naming the virtual path(s), so no real path reaches a client or log."""
    try:
        yield
    except OSError as exc:
        if exc.filename == vpath and exc.filename2 == vpath2:
            raise
        raise OSError(exc.errno, exc.strerror, vpath, None, vpath2) from None


def _split(vpath: str) -> list[str]:
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


def _check_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or any(c in name for c in _BAD_CHARS):
        raise ValueError(f"not a single path component: {name!r}")


def _join(parent: str, name: str) -> str:
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


@functools.lru_cache(maxsize=512)
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@functools.lru_cache(maxsize=512)
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _kind(mode: int) -> FileKind:
    if stat.S_ISDIR(mode):
        return FileKind.DIR
    if stat.S_ISREG(mode):
        return FileKind.FILE
    if stat.S_ISLNK(mode):
        return FileKind.LINK
    return FileKind.OTHER


def _proc_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


@contextlib.contextmanager
def _close_on_error(fd: int) -> Iterator[int]:
    try:
        yield fd
    except BaseException:
        os.close(fd)
        raise


class JailedFs:
    """One user's home as a jail. Every method blocks (disk I/O): call them from a worker thread.

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
        self._file_mode = file_mode & _PERMISSION_BITS
        self._hide_ids = hide_ids
        self._root_fd = os.open(self._home, _O_DIR_PATH)
        try:
            self._openat2 = self._probe_openat2(use_openat2)
        except BaseException:
            os.close(self._root_fd)
            raise

    def _probe_openat2(self, wanted: bool | None) -> bool:
        if wanted is False:
            return False
        try:
            os.close(_openat2(self._root_fd, b".", _O_DIR_PATH, 0))
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

    def __enter__(self) -> JailedFs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- resolution -------------------------------------------------------------------------

    def _open(self, parts: list[str], flags: int, mode: int = 0) -> int:
        """Open the jailed path made of `parts` (already valid components) with `flags`."""
        if self._openat2:
            rel = os.fsencode("/".join(parts)) if parts else b"."
            return _openat2(self._root_fd, rel, flags, mode)
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
        parts = _split(vpath)
        if not parts:
            raise _error(root_errno, vpath)
        with self._opened(parts[:-1], _O_DIR_PATH) as fd:
            yield fd, parts[-1]

    # -- facts ------------------------------------------------------------------------------

    def _facts(
        self,
        name: str,
        st: os.stat_result,
        *,
        kind: FileKind | None = None,
        size: int | None = None,
        link_target: str | None = None,
        target_kind: FileKind | None = None,
    ) -> FileFacts:
        hidden = self._hide_ids
        return FileFacts(
            name=name,
            kind=_kind(st.st_mode) if kind is None else kind,
            size=st.st_size if size is None else size,
            mtime=st.st_mtime,
            mode=stat.S_IMODE(st.st_mode),
            nlink=st.st_nlink,
            owner="ftp" if hidden else _user_name(st.st_uid),
            group="ftp" if hidden else _group_name(st.st_gid),
            unique=f"{st.st_dev:x}g{st.st_ino:x}",
            link_target=link_target,
            target_kind=target_kind,
        )

    def _fstat_path(self, parts: list[str]) -> os.stat_result:
        with self._opened(parts) as fd:
            return os.fstat(fd)

    def stat(self, vpath: str) -> FileFacts:
        """Facts of `vpath`, following symlinks inside the jail.

        Returns:
            FileFacts named by the last component, or "/" for the root.

        Raises:
            OSError: ENOENT, ENOTDIR, ELOOP (a loop, or any symlink without openat2), EACCES.
        """
        parts = _split(vpath)
        with _reported_as(vpath):
            return self._facts(parts[-1] if parts else "/", self._fstat_path(parts))

    def listdir(self, vpath: str) -> list[FileFacts]:
        """Entries of the directory `vpath`, sorted by name.

        A symlink is reported as kind LINK with its link text and the facts of its jailed
        target, or size 0 when the target is missing or refused. Entries that vanish while
        being listed are skipped. Names that are not UTF-8 keep their bytes as surrogates.

        Raises:
            OSError: ENOENT, ENOTDIR, EACCES, ELOOP.
        """
        parts = _split(vpath)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        with _reported_as(vpath), self._opened(parts, flags) as dirfd:
            names = os.listdir(dirfd)
            out = [f for n in names if (f := self._entry(dirfd, parts, n)) is not None]
        return sorted(out, key=lambda f: f.name)

    def _entry(self, dirfd: int, parts: list[str], name: str) -> FileFacts | None:
        try:
            lst = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            if not stat.S_ISLNK(lst.st_mode):
                return self._facts(name, lst)
            target = os.readlink(name, dir_fd=dirfd)
        except FileNotFoundError:
            return None
        try:
            resolved = self._fstat_path([*parts, name])
        except OSError:
            return self._facts(name, lst, size=0, link_target=target)
        return self._facts(
            name,
            resolved,
            kind=FileKind.LINK,
            link_target=target,
            target_kind=_kind(resolved.st_mode),
        )

    # -- data -------------------------------------------------------------------------------

    def _regular(self, fd: int, vpath: str) -> int:
        """Return `fd` made blocking if it is a regular file; close it and raise otherwise."""
        with _close_on_error(fd):
            st_mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(st_mode):
                raise _error(errno.EISDIR, vpath)
            if not stat.S_ISREG(st_mode):
                raise _error(errno.EPERM, vpath, "Not a regular file")
            os.set_blocking(fd, True)
        return fd

    def open_read(self, vpath: str) -> int:
        """Open a regular file for RETR.

        Returns:
            An O_RDONLY|O_CLOEXEC fd at offset 0; the caller closes it.

        Raises:
            OSError: IsADirectoryError for a directory, EPERM for anything else not regular.
        """
        parts = _split(vpath)
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        with _reported_as(vpath):
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
        parts = _split(vpath)
        flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        if append:
            flags |= os.O_APPEND
        elif not offset:
            flags |= os.O_TRUNC
        with _reported_as(vpath):
            try:
                fd = self._open_or_create(parts, flags, create=not offset)
            except OSError as exc:
                # A FIFO without a reader (or a device without hardware) under O_NONBLOCK.
                if exc.errno == errno.ENXIO:
                    raise _error(errno.EPERM, vpath, "Not a regular file") from None
                raise
            fd = self._regular(fd, vpath)
            self._drop_special_bits(fd)
            if offset:
                with _close_on_error(fd):
                    if offset > os.fstat(fd).st_size:
                        raise _error(errno.EINVAL, vpath, "Restart offset beyond end of file")
                    os.ftruncate(fd, offset)
                    os.lseek(fd, offset, os.SEEK_SET)
            return fd

    @staticmethod
    def _drop_special_bits(fd: int) -> None:
        """Clear setuid, setgid and sticky on a file about to be written (Rule 8)."""
        with _close_on_error(fd):
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & _SPECIAL_BITS:
                os.fchmod(fd, mode & _PERMISSION_BITS)

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
        _check_name(stem)
        parts = _split(dir_vpath)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with _reported_as(dir_vpath), self._opened(parts, _O_DIR_PATH) as dirfd:
            for i in range(UNIQUE_TRIES):
                name = f"{stem}.{i}" if i else stem
                try:
                    fd = os.open(name, flags, self._new_file_mode, dir_fd=dirfd)
                except FileExistsError:
                    continue
                return self._set_new_mode(fd), _join(dir_vpath, name)
            raise _error(errno.EEXIST, dir_vpath, "No unique name left")

    # -- namespace --------------------------------------------------------------------------

    def mkdir(self, vpath: str) -> None:
        """Create a directory with mode 0o777 & ~umask. Raises OSError (EEXIST, ENOENT...)."""
        want = _PERMISSION_BITS & ~self._umask
        with _reported_as(vpath), self._parent(vpath, errno.EEXIST) as (dirfd, name):
            os.mkdir(name, want, dir_fd=dirfd)
            try:
                fd = os.open(name, _O_DIR_PATH | os.O_NOFOLLOW, dir_fd=dirfd)
            except OSError:
                return  # already removed or replaced by another session: not ours to fix
            try:
                # The process umask may have taken bits the configured umask grants. The
                # setgid bit a setgid parent passes down stays (Rule 8); nothing else special.
                have = stat.S_IMODE(os.fstat(fd).st_mode)
                if have != want | (have & stat.S_ISGID):
                    os.chmod(_proc_path(fd), want | (have & stat.S_ISGID))
            finally:
                os.close(fd)

    def rmdir(self, vpath: str) -> None:
        """Remove an empty directory. Raises OSError (ENOTEMPTY, ENOTDIR, EBUSY for "/")."""
        with _reported_as(vpath), self._parent(vpath, errno.EBUSY) as (dirfd, name):
            os.rmdir(name, dir_fd=dirfd)

    def unlink(self, vpath: str) -> None:
        """Remove a file, or a symlink itself (never its target). EISDIR for a directory."""
        with _reported_as(vpath), self._parent(vpath, errno.EISDIR) as (dirfd, name):
            # unlinkat without AT_REMOVEDIR answers EISDIR for a directory on Linux.
            os.unlink(name, dir_fd=dirfd)

    def rename(self, src: str, dst: str) -> None:
        """RNFR/RNTO inside the jail; a symlink moves as itself. EBUSY for "/" either side."""
        with (
            _reported_as(src, dst),
            self._parent(src, errno.EBUSY) as (src_fd, src_name),
            self._parent(dst, errno.EBUSY) as (dst_fd, dst_name),
        ):
            os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)

    # -- attributes -------------------------------------------------------------------------

    def chmod(self, vpath: str, mode: int) -> None:
        """SITE CHMOD: set mode & 0o777, following symlinks only inside the jail (Rule 8).

        A directory that has the setgid bit keeps it, as coreutils' chmod does with a numeric
        mode: the bit is never added, and a user's chmod does not undo the admin's group share.
        """
        parts = _split(vpath)
        with _reported_as(vpath), self._opened(parts) as fd:
            st_mode = os.fstat(fd).st_mode
            keep = st_mode & stat.S_ISGID if stat.S_ISDIR(st_mode) else 0
            os.chmod(_proc_path(fd), (mode & _PERMISSION_BITS) | keep)

    def set_mtime(self, vpath: str, mtime: float) -> None:
        """MFMT (draft-somers-ftp-mfxx): set the modification time, keep the access time."""
        parts = _split(vpath)
        with _reported_as(vpath), self._opened(parts) as fd:
            atime_ns = os.fstat(fd).st_atime_ns
            os.utime(_proc_path(fd), ns=(atime_ns, round(mtime * 1_000_000_000)))

    def is_dir(self, vpath: str) -> bool:
        """True for a directory (symlinks followed in the jail); False when it cannot be reached."""
        parts = _split(vpath)
        try:
            return stat.S_ISDIR(self._fstat_path(parts).st_mode)
        except OSError:
            return False

    def free_bytes(self, vpath: str) -> int:
        """Bytes available to an unprivileged writer on the filesystem holding `vpath` (ALLO)."""
        parts = _split(vpath)
        with _reported_as(vpath), self._opened(parts) as fd:
            st = os.fstatvfs(fd)
        return st.f_bavail * st.f_frsize

    def real_path(self, vpath: str) -> str:
        """Home + vpath as text, for xferlog only: never use it to access the file."""
        _split(vpath)
        if vpath == "/":
            return self._home
        return self._home.rstrip("/") + vpath
