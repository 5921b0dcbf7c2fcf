"""The FTP reply for an operating-system error on a file operation (RFC 959 §4.2)."""

from __future__ import annotations

import errno as errnos

from ftpsup.proto.replies import Reply, reply


def os_error_reply(code: int) -> Reply:
    """Map an errno from a file operation to its reply: 452 full, 553 bad name, 550, 451."""
    if code in (errnos.ENOSPC, errnos.EDQUOT):
        return reply(452, "Insufficient storage space.")
    if code in (errnos.ENAMETOOLONG, errnos.EILSEQ, errnos.EINVAL):
        return reply(553, "File name not allowed.")
    if code in (errnos.ENOENT, errnos.ENOTDIR):
        return reply(550, "No such file or directory.")
    if code == errnos.EEXIST:
        return reply(550, "File exists.")
    if code == errnos.ENOTEMPTY:
        return reply(550, "Directory not empty.")
    if code == errnos.EISDIR:
        return reply(550, "Is a directory.")
    if code == errnos.EROFS:
        return reply(550, "Read-only file system.")
    if code in (errnos.EACCES, errnos.EPERM, errnos.ELOOP, errnos.EXDEV, errnos.EBUSY):
        return reply(550, "Permission denied.")
    return reply(451, "Local error in processing.")
