"""The file-system side of the state machine's FsCall and PrepareTransfer, for worker threads.

Everything here blocks and runs in a worker thread (Session's fs_limiter). It may touch the
JailedFs (its directory descriptors are only read), the session's protocol state (only read:
the control loop waits for the result meanwhile) and the file it opens; never a trio object
or the Session itself.
"""

from __future__ import annotations

import os

from ftpsup.proto import paths
from ftpsup.proto.session.actions import Direction, FsCall, FsOp, PrepareTransfer
from ftpsup.server import listings
from ftpsup.server.fs import JailedFs
from ftpsup.server.listings import ListingView

MESSAGE_LIMIT = 4096


def read_message(fs: JailedFs, vpath: str) -> list[str]:
    """The lines of a directory's message file (dirmessage_enable); none when unreadable."""
    try:
        fd = fs.open_read(vpath)
    except OSError:
        return []
    try:
        data = os.read(fd, MESSAGE_LIMIT)
    except OSError:
        return []
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace").splitlines()


def run_fs_call(view: ListingView, call: FsCall) -> object:
    """Carry out one FsCall; OSError propagates (the caller reports its errno)."""
    fs, path, op = view.fs, call.path, call.op
    if op is FsOp.IS_DIR:
        return fs.is_dir(path)
    if op is FsOp.READ_MESSAGE:
        return read_message(fs, path)
    if op is FsOp.MKDIR:
        fs.mkdir(path)
        return None
    if op is FsOp.RMDIR:
        fs.rmdir(path)
        return None
    if op is FsOp.UNLINK:
        fs.unlink(path)
        return None
    if op is FsOp.STAT:
        return fs.stat(path)
    if op is FsOp.RENAME:
        assert isinstance(call.arg, str)
        fs.rename(path, call.arg)
        return None
    if op is FsOp.SET_MTIME:
        assert isinstance(call.arg, float | int)
        fs.set_mtime(path, call.arg)
        return None
    if op is FsOp.CHMOD:
        assert isinstance(call.arg, int)
        fs.chmod(path, call.arg)
        return None
    if op is FsOp.FREE_BYTES:
        return fs.free_bytes(path)
    if op is FsOp.MLST_LINE:
        return listings.mlst_line(view, path)
    if op is FsOp.STAT_LISTING:
        assert isinstance(call.arg, str)
        return listings.stat_rows(view, path, call.arg)
    raise AssertionError(f"{op} is carried out on the event loop")


def open_for_transfer(
    view: ListingView, prep: PrepareTransfer
) -> tuple[int | None, bytes, int, str]:
    """Open what a transfer reads or writes: (fd or None, listing, size, path written).

    Raises OSError, or listings.NotADirectory for MLSD of a file.
    """
    fs, path = view.fs, prep.path
    if prep.direction is Direction.LISTING:
        data = listings.build(view, prep.verb, path, prep.flags)
        return None, data, len(data), path
    if prep.direction is Direction.RETRIEVE:
        fd = fs.open_read(path)
        try:
            return fd, b"", os.fstat(fd).st_size, path
        except OSError:
            os.close(fd)
            raise
    if prep.direction is Direction.UNIQUE:
        directory, name = paths.split(path)
        fd, unique = fs.create_unique(directory, name or "ftpsup")
        return fd, b"", 0, unique
    append = prep.direction is Direction.APPEND
    fd = fs.open_write(path, offset=prep.offset, append=append)
    return fd, b"", 0, path
