"""Informational verbs: SYST STAT HELP NOOP (RFC 959), FEAT OPTS (RFC 2389), MLST (RFC 3659).

Rules: FEAT is built from what this session can do, never a fixed list: no PASV on an IPv6
connection (it answers 522), no MFMT where writes are off (write_enable before login, the
session's own write right after it); STAT and NOOP answer during a transfer.
"""

from __future__ import annotations

from ftpsup import __version__
from ftpsup.proto.commands import feature_lines, help_reply
from ftpsup.server import listings
from ftpsup.server.handlers_files import resolve_or_reply
from ftpsup.server.session import MLST_FACTS_ALL, Handler, Session, os_error_reply


async def cmd_syst(s: Session, arg: str) -> None:
    await s.reply(215, "UNIX Type: L8")


async def cmd_noop(s: Session, arg: str) -> None:
    await s.reply(200, "NOOP ok.")


async def cmd_help(s: Session, arg: str) -> None:
    await s.send(help_reply(arg))


def _mlst_facts_text(selected: tuple[str, ...]) -> str:
    return "".join(f"{f}{'*' if f in selected else ''};" for f in MLST_FACTS_ALL)


async def cmd_feat(s: Session, arg: str) -> None:
    cfg = s.ctx.config
    lines = feature_lines(
        pasv_enable=cfg.pasv_enable,
        port_enable=cfg.port_enable,
        mlst_facts=_mlst_facts_text(s.mlst_facts),
        ipv6=s.is_ipv6,
        # FEAT may come before login: then only the instance's write_enable is known.
        mfmt=s.write_allowed("MFMT") if s.logged_in else cfg.write_enable,
        tls=cfg.ssl_enable,
        implicit=cfg.implicit_ssl,
    )
    await s.reply(211, "Features:", *lines, "End")


async def cmd_opts(s: Session, arg: str) -> None:
    name, _, value = arg.strip().partition(" ")
    name = name.upper()
    if name == "UTF8":
        # RFC 2640 §3.1: names are always exchanged as UTF-8 here, so ON and OFF both succeed
        # without changing anything (vsftpd answers the same way).
        await s.reply(200, "Always in UTF8 mode.")
    elif name == "MLST":
        wanted = [f for f in value.split(";") if f]
        known = {f.lower(): f for f in MLST_FACTS_ALL}
        s.mlst_facts = tuple(known[f.lower()] for f in wanted if f.lower() in known)
        # RFC 3659 §7.9: the reply lists the facts now selected.
        await s.reply(200, f"MLST OPTS {''.join(f + ';' for f in s.mlst_facts)}")
    else:
        await s.reply(501, f"Option not understood: {name}.")


async def cmd_mlst(s: Session, arg: str) -> None:
    vpath = await resolve_or_reply(s, arg)
    if vpath is None:
        return
    try:
        line = await s.fs_call(listings.mlst_line, s, vpath)
    except OSError as exc:
        await s.send(os_error_reply(exc))
        return
    # RFC 3659 §7.2: the fact line is indented by one space inside the 250 reply.
    await s.reply(250, f"Listing {vpath}", line, "End")


def _status_lines(s: Session) -> list[str]:
    cfg = s.ctx.config
    lines = [
        f"ftpsup {__version__} status:",
        f"Connected to {s.peer_ip}",
        f"Logged in as {s.user}" if s.user else "Not logged in",
        f"TYPE: {'ASCII' if s.ascii else 'BINARY'}",
        f"Session timeout in seconds is {cfg.idle_session_timeout}",
        f"Control connection is {'TLS' if s.control_tls else 'plain text'}",
        f"Data connections will be {'TLS' if s.prot_private else 'plain text'}",
    ]
    transfer = s.transfer
    if transfer is not None:
        lines.append(
            f"Transferring {transfer.vpath} ({transfer.verb}): "
            f"{transfer.progress.bytes_done} bytes so far"
        )
    else:
        lines.append("No transfer in progress")
    return lines


async def cmd_stat(s: Session, arg: str) -> None:
    if not arg.strip() or s.transfer is not None:
        lines = _status_lines(s)
        await s.reply(211, *lines, "End of status")
        return
    if not s.logged_in:
        await s.reply(530, "Please login with USER and PASS.")
        return
    flags, target = listings.split_list_arg(arg)
    vpath = await resolve_or_reply(s, target)
    if vpath is None:
        return
    try:
        entries = await s.fs_call(listings.entries_for, s, "LIST", vpath, flags)
    except OSError as exc:
        await s.send(os_error_reply(exc))
        return
    # RFC 959 §4.1.3: with an argument, STAT is LIST over the control connection.
    rows = listings.format_entries(s, "LIST", entries)
    await s.reply(213, "Status follows:", *rows, "End of status")


HANDLERS: dict[str, Handler] = {
    "SYST": cmd_syst,
    "NOOP": cmd_noop,
    "HELP": cmd_help,
    "FEAT": cmd_feat,
    "OPTS": cmd_opts,
    "MLST": cmd_mlst,
    "STAT": cmd_stat,
}
