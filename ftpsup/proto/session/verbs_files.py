"""File and directory verbs on the control connection.

CWD CDUP PWD MKD RMD DELE RNFR RNTO (RFC 959), SIZE MDTM (RFC 3659), MFMT
(draft-somers-ftp-mfxx), SITE CHMOD/UMASK/HELP, ALLO.

Rules: every path is resolved here (virtual, clamped at "/"; proto.paths) and then handed to
the jailed file system in a worker thread (FsCall); every errno becomes a reply through
os_error_reply.

SIZE in TYPE A is refused with 550, as pyftpdlib does: RFC 3659 §4 asks for the size as
transferred, and in TYPE A every bare LF goes out as CRLF, so the size on disk would be wrong
(vsftpd returns it anyway). Counting the line ends means reading the whole file for each SIZE,
and RFC 3659 §4 lets a server refuse when that costs too much. Clients do not depend on it:
curl skips SIZE for ASCII downloads, and the others ask in TYPE I.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftpsup.proto import paths
from ftpsup.proto.facts import FileFacts, FileKind
from ftpsup.proto.listing import format_time_val, parse_time_val
from ftpsup.proto.numbers import parse_uint
from ftpsup.proto.replies import quote_path
from ftpsup.proto.session.actions import FsCall, FsDone, FsError, FsOp
from ftpsup.proto.session.errors import os_error_reply
from ftpsup.proto.session.types import Steps
from ftpsup.proto.session.verbs_info import on_path, resolved

if TYPE_CHECKING:
    from ftpsup.proto.session.machine import FtpSession

MAX_ALLO = 2**63 - 1  # the largest file Linux can hold (off_t)


def _change_dir(m: FtpSession, vpath: str) -> Steps:
    outcome = yield FsCall(FsOp.IS_DIR, vpath)
    if not (isinstance(outcome, FsDone) and outcome.value is True):
        m.reply(550, "Failed to change directory.")
        return
    m.state.cwd = vpath
    lines: list[str] = []
    cfg = m.config
    if cfg.dirmessage_enable:
        message = yield FsCall(FsOp.READ_MESSAGE, paths.join(vpath, cfg.message_file))
        if isinstance(message, FsDone) and isinstance(message.value, list):
            lines = [str(line) for line in message.value]
    m.reply(250, *lines, "Directory successfully changed.")


def change_dir(m: FtpSession, arg: str) -> Steps | None:
    return on_path(m, arg, _change_dir)


def change_to_parent(m: FtpSession, arg: str) -> Steps:
    return _change_dir(m, paths.resolve(m.state.cwd, ".."))


def print_dir(m: FtpSession, arg: str) -> None:
    m.reply(257, f"{quote_path(m.state.cwd)} is the current directory")


def _simple(m: FtpSession, op: FsOp, arg: str, code: int, text: str) -> Steps | None:
    vpath = resolved(m, arg)
    return None if vpath is None else _then_reply(m, FsCall(op, vpath), code, text)


def _then_reply(m: FtpSession, call: FsCall, code: int, text: str) -> Steps:
    outcome = yield call
    if isinstance(outcome, FsError):
        m.send(os_error_reply(outcome.errno))
    else:
        m.reply(code, text)


def make_dir(m: FtpSession, arg: str) -> Steps | None:
    vpath = resolved(m, arg)
    if vpath is None:
        return None
    return _then_reply(m, FsCall(FsOp.MKDIR, vpath), 257, f"{quote_path(vpath)} created")


def remove_dir(m: FtpSession, arg: str) -> Steps | None:
    return _simple(m, FsOp.RMDIR, arg, 250, "Remove directory operation successful.")


def delete(m: FtpSession, arg: str) -> Steps | None:
    return _simple(m, FsOp.UNLINK, arg, 250, "Delete operation successful.")


def rename_from(m: FtpSession, arg: str) -> Steps | None:
    return on_path(m, arg, _rename_from)


def _rename_from(m: FtpSession, vpath: str) -> Steps:
    outcome = yield FsCall(FsOp.STAT, vpath)
    if isinstance(outcome, FsError):
        m.send(os_error_reply(outcome.errno))
        return
    m.state.rename_from = vpath
    m.reply(350, "Ready for RNTO.")


def rename_to(m: FtpSession, arg: str) -> Steps | None:
    st = m.state
    source, st.rename_from = st.rename_from, None
    if source is None:
        m.reply(503, "RNFR required first.")
        return None
    target = resolved(m, arg)
    if target is None:
        return None
    return _then_reply(m, FsCall(FsOp.RENAME, source, target), 250, "Rename successful.")


def size(m: FtpSession, arg: str) -> Steps | None:
    if m.state.ascii:
        m.reply(550, "SIZE not allowed in ASCII mode; use TYPE I.")
        return None
    return on_path(m, arg, _size)


def _size(m: FtpSession, vpath: str) -> Steps:
    outcome = yield FsCall(FsOp.STAT, vpath)
    facts = outcome.value if isinstance(outcome, FsDone) else None
    if not isinstance(facts, FileFacts) or facts.kind is not FileKind.FILE:
        m.reply(550, "Could not get file size.")
        return
    m.reply(213, str(facts.size))


def modification_time(m: FtpSession, arg: str) -> Steps | None:
    return on_path(m, arg, _mdtm)


def _mdtm(m: FtpSession, vpath: str) -> Steps:
    outcome = yield FsCall(FsOp.STAT, vpath)
    facts = outcome.value if isinstance(outcome, FsDone) else None
    if not isinstance(facts, FileFacts):
        m.reply(550, "Could not get file modification time.")
        return
    m.reply(213, format_time_val(facts.mtime))


def set_modification_time(m: FtpSession, arg: str) -> Steps | None:
    stamp, _, name = arg.partition(" ")
    try:
        mtime = parse_time_val(stamp)
    except ValueError:
        m.reply(501, "Syntax: MFMT <sp> YYYYMMDDHHMMSS <sp> pathname")
        return None
    vpath = resolved(m, name)
    if vpath is None:
        return None
    if not name:
        m.reply(501, "Syntax: MFMT <sp> YYYYMMDDHHMMSS <sp> pathname")
        return None
    text = f"Modify={format_time_val(mtime)}; {vpath}"
    return _then_reply(m, FsCall(FsOp.SET_MTIME, vpath, mtime), 213, text)


def _site_chmod(m: FtpSession, rest: str) -> Steps | None:
    st = m.state
    if not m.config.chmod_enable:
        # vsftpd answers 500 "Unknown SITE command."; 502 says the same and names the cause.
        m.reply(502, "SITE CHMOD is disabled on this server.")
        return None
    if st.anonymous or not st.write_allowed("SITE"):
        m.reply(550, "Permission denied.")
        return None
    mode_text, _, name = rest.partition(" ")
    mode = parse_uint(mode_text, 0o7777, base=8)
    if mode is None or not name:
        m.reply(501, "Syntax: SITE CHMOD <sp> mode <sp> pathname")
        return None
    vpath = resolved(m, name)
    if vpath is None:
        return None
    if mode & ~0o777:
        # The file system keeps the permission bits only: no setuid program, ever.
        text = "SITE CHMOD command ok; setuid, setgid and sticky bits ignored."
    else:
        text = "SITE CHMOD command ok."
    return _then_reply(m, FsCall(FsOp.CHMOD, vpath, mode), 200, text)


def _site_umask(m: FtpSession, rest: str) -> Steps | None:
    st = m.state
    if not rest:
        m.reply(200, f"Your current UMASK is {st.umask:03o}")
        return None
    mask = parse_uint(rest, 0o777, base=8)
    if mask is None:
        m.reply(501, "Syntax: SITE UMASK <sp> octal-mask")
        return None
    return _site_umask_set(m, mask)


def _site_umask_set(m: FtpSession, mask: int) -> Steps:
    # SITE is no during-transfer verb: the machine has waited for a running transfer (which
    # writes through the home opened with the old umask) before this runs.
    outcome = yield FsCall(FsOp.SET_UMASK, m.state.cwd, mask)
    if isinstance(outcome, FsError):
        m.send(os_error_reply(outcome.errno))
        return
    m.state.umask = mask
    m.reply(200, f"UMASK set to {mask:03o}")


def site(m: FtpSession, arg: str) -> Steps | None:
    sub, _, rest = arg.strip().partition(" ")
    sub = sub.upper()
    if sub == "CHMOD":
        return _site_chmod(m, rest.strip())
    if sub == "UMASK":
        return _site_umask(m, rest.strip())
    if sub == "HELP":
        # As vsftpd: CHMOD is offered only when chmod_enable is on.
        m.reply(214, "CHMOD UMASK HELP" if m.config.chmod_enable else "UMASK HELP")
    else:
        m.reply(500, "Unknown SITE command.")
    return None


def allocate(m: FtpSession, arg: str) -> Steps | None:
    # RFC 959 §4.1.3: "ALLO size [R record-size]". Checking free space here lets a client
    # learn of a full disk before it sends the data.
    words = arg.split()
    wanted = parse_uint(words[0], MAX_ALLO) if words else None
    if wanted is None:
        m.reply(501, "Syntax: ALLO <sp> size")
        return None
    return _allocate(m, wanted)


def _allocate(m: FtpSession, wanted: int) -> Steps:
    outcome = yield FsCall(FsOp.FREE_BYTES, m.state.cwd)
    free = outcome.value if isinstance(outcome, FsDone) else None
    if isinstance(free, int) and wanted > free:
        m.reply(452, "Insufficient storage space.")
        return
    m.reply(200, "ALLO command successful.")
