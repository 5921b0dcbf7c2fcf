"""Informational verbs: SYST STAT HELP NOOP (RFC 959), FEAT OPTS (RFC 2389), MLST (RFC 3659).

Rules: FEAT is built from what this session can do, never a fixed list: no PASV on an IPv6
connection (it answers 522), no MFMT where writes are off (write_enable before login, the
session's own write right after it); STAT and NOOP answer during a transfer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ftpsup import __version__
from ftpsup.proto import paths
from ftpsup.proto.commands import feature_lines, help_reply
from ftpsup.proto.session.actions import FsCall, FsDone, FsError, FsOp, TransferProgress
from ftpsup.proto.session.errors import os_error_reply
from ftpsup.proto.session.state import MLST_FACTS_ALL
from ftpsup.proto.session.types import Steps

if TYPE_CHECKING:
    from ftpsup.proto.session.machine import FtpSession


def system(m: FtpSession, arg: str) -> None:
    m.reply(215, "UNIX Type: L8")


def noop(m: FtpSession, arg: str) -> None:
    m.reply(200, "NOOP ok.")


def help_(m: FtpSession, arg: str) -> None:
    m.send(help_reply(arg, m.specs))


def _mlst_facts_text(selected: tuple[str, ...]) -> str:
    return "".join(f"{f}{'*' if f in selected else ''};" for f in MLST_FACTS_ALL)


def features(m: FtpSession, arg: str) -> None:
    cfg, st = m.config, m.state
    lines = feature_lines(
        pasv_enable=cfg.pasv_enable,
        port_enable=cfg.port_enable,
        mlst_facts=_mlst_facts_text(st.mlst_facts),
        ipv6=st.ipv6,
        # FEAT may come before login: then only the instance's write_enable is known.
        mfmt=st.write_allowed("MFMT") if st.logged_in else cfg.write_enable,
        tls=cfg.ssl_enable,
        implicit=cfg.implicit_ssl,
    )
    m.reply(211, "Features:", *lines, "End")


def options(m: FtpSession, arg: str) -> None:
    name, _, value = arg.strip().partition(" ")
    name = name.upper()
    if name == "UTF8":
        # RFC 2640 §3.1: names are always exchanged as UTF-8 here, so ON and OFF both succeed
        # without changing anything (vsftpd answers the same way).
        m.reply(200, "Always in UTF8 mode.")
    elif name == "MLST":
        wanted = [f for f in value.split(";") if f]
        known = {f.lower(): f for f in MLST_FACTS_ALL}
        m.state.mlst_facts = tuple(known[f.lower()] for f in wanted if f.lower() in known)
        # RFC 3659 §7.9: the reply lists the facts now selected.
        m.reply(200, f"MLST OPTS {''.join(f + ';' for f in m.state.mlst_facts)}")
    else:
        m.reply(501, f"Option not understood: {name}.")


def resolved(m: FtpSession, arg: str) -> str | None:
    """The virtual path for `arg`, or None after replying 553 for a hostile one."""
    try:
        return paths.resolve(m.state.cwd, arg)
    except paths.PathError as exc:
        m.reply(exc.reply_code, "File name not allowed.")
        return None


def on_path(m: FtpSession, arg: str, steps: Callable[[FtpSession, str], Steps]) -> Steps | None:
    """`steps` on the virtual path `arg` names, or None after replying 553 for a hostile one."""
    vpath = resolved(m, arg)
    return None if vpath is None else steps(m, vpath)


def machine_listing(m: FtpSession, arg: str) -> Steps | None:
    return on_path(m, arg, _mlst)


def _mlst(m: FtpSession, vpath: str) -> Steps:
    outcome = yield FsCall(FsOp.MLST_LINE, vpath)
    if isinstance(outcome, FsError):
        m.send(os_error_reply(outcome.errno))
        return
    assert isinstance(outcome, FsDone)
    # RFC 3659 §7.2: the fact line is indented by one space inside the 250 reply.
    m.reply(250, f"Listing {vpath}", str(outcome.value), "End")


def _status_lines(m: FtpSession, bytes_done: int) -> list[str]:
    st = m.state
    lines = [
        f"ftpsup {__version__} status:",
        f"Connected to {st.peer_ip}",
        f"Logged in as {st.user}" if st.user else "Not logged in",
        f"TYPE: {'ASCII' if st.ascii else 'BINARY'}",
        f"Session timeout in seconds is {m.config.idle_session_timeout}",
        f"Control connection is {'TLS' if st.control_tls else 'plain text'}",
        f"Data connections will be {'TLS' if st.prot_private else 'plain text'}",
    ]
    if st.transfer is not None:
        verb, vpath = st.transfer
        lines.append(f"Transferring {vpath} ({verb}): {bytes_done} bytes so far")
    else:
        lines.append("No transfer in progress")
    return lines


def status(m: FtpSession, arg: str) -> Steps | None:
    st = m.state
    if st.transfer is not None:
        return _status_during_transfer(m)
    if not arg.strip():
        m.reply(211, *_status_lines(m, 0), "End of status")
        return None
    if not st.logged_in:
        m.reply(530, "Please login with USER and PASS.")
        return None
    flags, target = split_list_arg(arg)
    vpath = resolved(m, target)
    return None if vpath is None else _status_of(m, vpath, flags)


def _status_during_transfer(m: FtpSession) -> Steps:
    outcome = yield TransferProgress()
    done = outcome.value if isinstance(outcome, FsDone) and isinstance(outcome.value, int) else 0
    m.reply(211, *_status_lines(m, done), "End of status")


def _status_of(m: FtpSession, vpath: str, flags: str) -> Steps:
    outcome = yield FsCall(FsOp.STAT_LISTING, vpath, flags)
    if isinstance(outcome, FsError):
        m.send(os_error_reply(outcome.errno))
        return
    assert isinstance(outcome, FsDone)
    assert isinstance(outcome.value, list)
    # RFC 959 §4.1.3: with an argument, STAT is LIST over the control connection.
    m.reply(213, "Status follows:", *outcome.value, "End of status")


def split_list_arg(arg: str) -> tuple[str, str]:
    """Split "-la some dir" into flags "la" and the path "some dir"."""
    flags = ""
    rest = arg.strip()
    while rest.startswith("-"):
        word, _, rest = rest.partition(" ")
        flags += word[1:]
        rest = rest.lstrip()
    return flags, rest
