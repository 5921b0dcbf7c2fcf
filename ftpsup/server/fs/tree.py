"""TreeChanges: MKD, RMD, DELE, RNFR/RNTO, SITE CHMOD and MFMT inside the jail.

Theory of operation: a change to a name (mkdir, rmdir, unlink, rename) opens the parent
directory through the jail and acts on the final name with the dir_fd form of the system call,
so a symlink as the final component is acted on itself, never followed (Rule 3). A change to
attributes (chmod, mtime) opens the path as an O_PATH fd through the jail and acts on
/proc/self/fd/N: the kernel follows that fd, not a path, so a symlink is followed only as far
as the jail allows.

Rules:
- Rule 6: chmod and MFMT act through /proc/self/fd/N on an O_PATH fd, so a symlink is followed
  only inside the jail. /proc must be mounted.
- Rule 8 (directories): new directories get at most 0o777 & ~umask, and chmod keeps
  `mode & 0o777` (as vsftpd): nothing ever gains setuid, setgid or sticky. One exception, on
  directories only: a directory made inside a setgid directory keeps the setgid bit the kernel
  gives it, and chmod of a directory keeps a setgid bit it already has (as coreutils' chmod
  does). That is how Linux group-shared trees work (new entries take the directory's group); on
  a directory the bit grants no privilege, it only picks the group of new entries, which the
  admin chose by setting it on the parent. A file never keeps setgid.
"""

from __future__ import annotations

import errno
import os
import stat

from ftpsup.server.fs.jail import (
    O_DIR_PATH,
    PERMISSION_BITS,
    Jail,
    reported_as,
    split_vpath,
)


def _proc_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


class TreeChanges(Jail):
    """Changes to names and attributes; the methods of JailedFs that return nothing."""

    __slots__ = ()

    def mkdir(self, vpath: str) -> None:
        """Create a directory with mode 0o777 & ~umask. Raises OSError (EEXIST, ENOENT...)."""
        want = PERMISSION_BITS & ~self._umask
        with reported_as(vpath), self._parent(vpath, errno.EEXIST) as (dirfd, name):
            os.mkdir(name, want, dir_fd=dirfd)
            try:
                fd = os.open(name, O_DIR_PATH | os.O_NOFOLLOW, dir_fd=dirfd)
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
        with reported_as(vpath), self._parent(vpath, errno.EBUSY) as (dirfd, name):
            os.rmdir(name, dir_fd=dirfd)

    def unlink(self, vpath: str) -> None:
        """Remove a file, or a symlink itself (never its target). EISDIR for a directory."""
        with reported_as(vpath), self._parent(vpath, errno.EISDIR) as (dirfd, name):
            # unlinkat without AT_REMOVEDIR answers EISDIR for a directory on Linux.
            os.unlink(name, dir_fd=dirfd)

    def rename(self, src: str, dst: str) -> None:
        """RNFR/RNTO inside the jail; a symlink moves as itself. EBUSY for "/" either side."""
        with (
            reported_as(src, dst),
            self._parent(src, errno.EBUSY) as (src_fd, src_name),
            self._parent(dst, errno.EBUSY) as (dst_fd, dst_name),
        ):
            os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)

    def chmod(self, vpath: str, mode: int) -> None:
        """SITE CHMOD: set mode & 0o777, following symlinks only inside the jail (Rule 8).

        A directory that has the setgid bit keeps it, as coreutils' chmod does with a numeric
        mode: the bit is never added, and a user's chmod does not undo the admin's group share.
        """
        parts = split_vpath(vpath)
        with reported_as(vpath), self._opened(parts) as fd:
            st_mode = os.fstat(fd).st_mode
            keep = st_mode & stat.S_ISGID if stat.S_ISDIR(st_mode) else 0
            os.chmod(_proc_path(fd), (mode & PERMISSION_BITS) | keep)

    def set_mtime(self, vpath: str, mtime: float) -> None:
        """MFMT (draft-somers-ftp-mfxx): set the modification time, keep the access time."""
        parts = split_vpath(vpath)
        with reported_as(vpath), self._opened(parts) as fd:
            atime_ns = os.fstat(fd).st_atime_ns
            os.utime(_proc_path(fd), ns=(atime_ns, round(mtime * 1_000_000_000)))
