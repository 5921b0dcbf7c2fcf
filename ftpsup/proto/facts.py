"""FileFacts: what the filesystem layer tells the listing formatters about one entry.

Rules: plain data only; built by ftpsup.server.fs, formatted by ftpsup.proto.listing.
"""

from __future__ import annotations

import enum

import attrs


class FileKind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    LINK = "link"
    OTHER = "other"


@attrs.frozen
class FileFacts:
    """One directory entry as seen by the client.

    `mtime` is seconds since the epoch (UTC). `mode` holds the permission bits only
    (0o7777). `unique` is stable for the life of the file (device and inode).
    `link_target` is set for a symbolic link, as the link text reads. `target_kind` is set
    for a symbolic link that resolves inside the jail: the kind of what it points to, whose
    facts (size, mtime, mode) the other fields then hold. A dangling link has none.
    """

    name: str
    kind: FileKind
    size: int
    mtime: float
    mode: int
    nlink: int = 1
    owner: str = "ftp"
    group: str = "ftp"
    unique: str = ""
    link_target: str | None = None
    target_kind: FileKind | None = None
