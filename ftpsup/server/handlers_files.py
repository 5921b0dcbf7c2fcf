"""File and directory verbs on the control connection.

CWD CDUP PWD MKD RMD DELE RNFR RNTO (RFC 959), SIZE MDTM (RFC 3659), MFMT
(draft-somers-ftp-mfxx), SITE CHMOD/UMASK/HELP, ALLO.

Rules: every path goes through Session.resolve (virtual, clamped at "/") and then the jailed
filesystem in a worker thread; every OSError becomes a reply through os_error_reply.

SIZE in TYPE A is refused with 550, as pyftpdlib does: RFC 3659 §4 asks for the size as
transferred, and in TYPE A every bare LF goes out as CRLF, so the size on disk would be wrong
(vsftpd returns it anyway). Counting the line ends means reading the whole file for each SIZE,
and RFC 3659 §4 lets a server refuse when that costs too much. Clients do not depend on it:
curl skips SIZE for ASCII downloads, and the others ask in TYPE I.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ftpsup.proto import paths
from ftpsup.proto.facts import FileKind
from ftpsup.proto.listing import format_time_val, parse_time_val
from ftpsup.proto.numbers import parse_uint
from ftpsup.proto.replies import quote_path
from ftpsup.server.fs import JailedFs
from ftpsup.server.session import FsFailed, Handler, Session

MESSAGE_LIMIT = 4096
MAX_ALLO = 2**63 - 1  # the largest file Linux can hold (off_t)


async def resolve_or_reply(s: Session, arg: str) -> str | None:
    """The virtual path for `arg`, or None after replying 553 for a hostile one."""
    try:
        return s.resolve(arg)
    except paths.PathError as exc:
        await s.reply(exc.reply_code, "File name not allowed.")
        return None


def _read_message(fs: JailedFs, vpath: str) -> list[str]:
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


async def _change_dir(s: Session, vpath: str) -> None:
    assert s.fs is not None
    if not await s.fs_call(s.fs.is_dir, vpath):
        await s.reply(550, "Failed to change directory.")
        return
    s.cwd = vpath
    lines: list[str] = []
    if s.ctx.config.dirmessage_enable:
        message = paths.join(vpath, s.ctx.config.message_file)
        lines = await s.fs_call(_read_message, s.fs, message)
    await s.reply(250, *lines, "Directory successfully changed.")


async def cmd_cwd(s: Session, arg: str) -> None:
    vpath = await resolve_or_reply(s, arg)
    if vpath is not None:
        await _change_dir(s, vpath)


async def cmd_cdup(s: Session, arg: str) -> None:
    await _change_dir(s, paths.resolve(s.cwd, ".."))


async def cmd_pwd(s: Session, arg: str) -> None:
    await s.reply(257, f"{quote_path(s.cwd)} is the current directory")


async def cmd_mkd(s: Session, arg: str) -> None:
    vpath = await resolve_or_reply(s, arg)
    if vpath is None:
        return
    assert s.fs is not None
    if not isinstance(await s.fs_or_reply(s.fs.mkdir, vpath), FsFailed):
        await s.reply(257, f"{quote_path(vpath)} created")


async def _remove(s: Session, arg: str, op: Callable[[JailedFs, str], None], done: str) -> None:
    vpath = await resolve_or_reply(s, arg)
    if vpath is None:
        return
    assert s.fs is not None
    if not isinstance(await s.fs_or_reply(op, s.fs, vpath), FsFailed):
        await s.reply(250, done)


async def cmd_rmd(s: Session, arg: str) -> None:
    await _remove(s, arg, JailedFs.rmdir, "Remove directory operation successful.")


async def cmd_dele(s: Session, arg: str) -> None:
    await _remove(s, arg, JailedFs.unlink, "Delete operation successful.")


async def cmd_rnfr(s: Session, arg: str) -> None:
    vpath = await resolve_or_reply(s, arg)
    if vpath is None:
        return
    assert s.fs is not None
    if isinstance(await s.fs_or_reply(s.fs.stat, vpath), FsFailed):
        return
    s.rename_from = vpath
    await s.reply(350, "Ready for RNTO.")


async def cmd_rnto(s: Session, arg: str) -> None:
    source, s.rename_from = s.rename_from, None
    if source is None:
        await s.reply(503, "RNFR required first.")
        return
    target = await resolve_or_reply(s, arg)
    if target is None:
        return
    assert s.fs is not None
    if not isinstance(await s.fs_or_reply(s.fs.rename, source, target), FsFailed):
        await s.reply(250, "Rename successful.")


async def cmd_size(s: Session, arg: str) -> None:
    if s.ascii:
        await s.reply(550, "SIZE not allowed in ASCII mode; use TYPE I.")
        return
    vpath = await resolve_or_reply(s, arg)
    if vpath is None:
        return
    assert s.fs is not None
    try:
        facts = await s.fs_call(s.fs.stat, vpath)
    except OSError:
        facts = None
    if facts is None or facts.kind is not FileKind.FILE:
        await s.reply(550, "Could not get file size.")
        return
    await s.reply(213, str(facts.size))


async def cmd_mdtm(s: Session, arg: str) -> None:
    vpath = await resolve_or_reply(s, arg)
    if vpath is None:
        return
    assert s.fs is not None
    try:
        facts = await s.fs_call(s.fs.stat, vpath)
    except OSError:
        await s.reply(550, "Could not get file modification time.")
        return
    await s.reply(213, format_time_val(facts.mtime))


async def cmd_mfmt(s: Session, arg: str) -> None:
    stamp, _, name = arg.partition(" ")
    try:
        mtime = parse_time_val(stamp)
    except ValueError:
        await s.reply(501, "Syntax: MFMT <sp> YYYYMMDDHHMMSS <sp> pathname")
        return
    vpath = await resolve_or_reply(s, name)
    if vpath is None:
        return
    if not name:
        await s.reply(501, "Syntax: MFMT <sp> YYYYMMDDHHMMSS <sp> pathname")
        return
    assert s.fs is not None
    if not isinstance(await s.fs_or_reply(s.fs.set_mtime, vpath, mtime), FsFailed):
        await s.reply(213, f"Modify={format_time_val(mtime)}; {vpath}")


async def _site_chmod(s: Session, rest: str) -> None:
    if not s.ctx.config.chmod_enable:
        # vsftpd answers 500 "Unknown SITE command."; 502 says the same and names the cause.
        await s.reply(502, "SITE CHMOD is disabled on this server.")
        return
    if s.anonymous or not s.write_allowed("SITE"):
        await s.reply(550, "Permission denied.")
        return
    mode_text, _, name = rest.partition(" ")
    mode = parse_uint(mode_text, 0o7777, base=8)
    if mode is None or not name:
        await s.reply(501, "Syntax: SITE CHMOD <sp> mode <sp> pathname")
        return
    vpath = await resolve_or_reply(s, name)
    if vpath is None:
        return
    assert s.fs is not None
    if isinstance(await s.fs_or_reply(s.fs.chmod, vpath, mode), FsFailed):
        return
    if mode & ~0o777:
        # JailedFs.chmod keeps the permission bits only: no setuid program, ever.
        await s.reply(200, "SITE CHMOD command ok; setuid, setgid and sticky bits ignored.")
    else:
        await s.reply(200, "SITE CHMOD command ok.")


async def _site_umask(s: Session, rest: str) -> None:
    if not rest:
        await s.reply(200, f"Your current UMASK is {s.umask:03o}")
        return
    mask = parse_uint(rest, 0o777, base=8)
    if mask is None:
        await s.reply(501, "Syntax: SITE UMASK <sp> octal-mask")
        return
    assert s.fs is not None
    cfg = s.ctx.config
    old = s.fs
    s.fs = await s.fs_call(
        JailedFs, old.root, umask=mask, file_mode=cfg.file_open_mode, hide_ids=cfg.hide_ids
    )
    await s.wait_transfer()
    old.close()
    s.umask = mask
    await s.reply(200, f"UMASK set to {mask:03o}")


async def cmd_site(s: Session, arg: str) -> None:
    sub, _, rest = arg.strip().partition(" ")
    sub = sub.upper()
    if sub == "CHMOD":
        await _site_chmod(s, rest.strip())
    elif sub == "UMASK":
        await _site_umask(s, rest.strip())
    elif sub == "HELP":
        # As vsftpd: CHMOD is offered only when chmod_enable is on.
        await s.reply(214, "CHMOD UMASK HELP" if s.ctx.config.chmod_enable else "UMASK HELP")
    else:
        await s.reply(500, "Unknown SITE command.")


async def cmd_allo(s: Session, arg: str) -> None:
    # RFC 959 §4.1.3: "ALLO size [R record-size]". Checking free space here lets a client
    # learn of a full disk before it sends the data.
    words = arg.split()
    size = parse_uint(words[0], MAX_ALLO) if words else None
    if size is None:
        await s.reply(501, "Syntax: ALLO <sp> size")
        return
    assert s.fs is not None
    try:
        free = await s.fs_call(s.fs.free_bytes, s.cwd)
    except OSError:
        free = None
    if free is not None and size > free:
        await s.reply(452, "Insufficient storage space.")
        return
    await s.reply(200, "ALLO command successful.")


HANDLERS: dict[str, Handler] = {
    "CWD": cmd_cwd,
    "CDUP": cmd_cdup,
    "PWD": cmd_pwd,
    "MKD": cmd_mkd,
    "RMD": cmd_rmd,
    "DELE": cmd_dele,
    "RNFR": cmd_rnfr,
    "RNTO": cmd_rnto,
    "SIZE": cmd_size,
    "MDTM": cmd_mdtm,
    "MFMT": cmd_mfmt,
    "SITE": cmd_site,
    "ALLO": cmd_allo,
}
