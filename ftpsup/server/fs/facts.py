"""Lookups: what a path is (SIZE, MDTM, MLST, LIST, MLSD, CWD, ALLO), as FileFacts.

Theory of operation: a lookup opens the path through the jail as an O_PATH fd and fstats that
fd, so symlinks are followed exactly as far as the jail allows (Rule 1) and what is reported is
what an open would reach. A listing opens the directory once, reads its names, and lstats each
entry relative to that directory fd; a symlink entry is reported as itself (kind LINK, its link
text) with the facts of its target resolved through the jail. Nothing here changes the disk.

Rules:
- Owner and group are names from the passwd and group databases, cached per id, or the number
  when the id has no name; with hide_ids both are "ftp" (vsftpd's hide_ids).
- The unique fact is device and inode in hex, stable while the file exists (RFC 3659 §7.5.2).
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
import stat

from ftpsup.proto.facts import FileFacts, FileKind
from ftpsup.server.fs.jail import Jail, reported_as, split_vpath


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


class Lookups(Jail):
    """Reading what is on disk; the methods of JailedFs that change nothing."""

    __slots__ = ()

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
        parts = split_vpath(vpath)
        with reported_as(vpath):
            return self._facts(parts[-1] if parts else "/", self._fstat_path(parts))

    def listdir(self, vpath: str) -> list[FileFacts]:
        """Entries of the directory `vpath`, sorted by name.

        A symlink is reported as kind LINK with its link text and the facts of its jailed
        target, or size 0 when the target is missing or refused. Entries that vanish while
        being listed are skipped. Names that are not UTF-8 keep their bytes as surrogates.

        Raises:
            OSError: ENOENT, ENOTDIR, EACCES, ELOOP.
        """
        parts = split_vpath(vpath)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        with reported_as(vpath), self._opened(parts, flags) as dirfd:
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

    def is_dir(self, vpath: str) -> bool:
        """True for a directory (symlinks followed in the jail); False when it cannot be reached."""
        parts = split_vpath(vpath)
        try:
            return stat.S_ISDIR(self._fstat_path(parts).st_mode)
        except OSError:
            return False

    def free_bytes(self, vpath: str) -> int:
        """Bytes available to an unprivileged writer on the filesystem holding `vpath` (ALLO)."""
        parts = split_vpath(vpath)
        with reported_as(vpath), self._opened(parts) as fd:
            st = os.fstatvfs(fd)
        return st.f_bavail * st.f_frsize
