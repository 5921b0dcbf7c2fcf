"""The FTP command table: what each verb needs before it may run, and how a line becomes a Command.

Rules:
- One table (proto.session.table.VERBS: a CommandSpec and a handler per verb) drives the
  pre-checks (login, argument, write permission), HELP and dispatch; handlers never repeat
  those checks.
- Verbs are matched case-insensitively (RFC 959 §5.3) and never looked up by attribute name.
- No I/O here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from ftpsup.proto.replies import Reply, reply


class Arg(enum.Enum):
    NONE = "none"
    REQUIRED = "required"
    OPTIONAL = "optional"


@attrs.frozen
class CommandSpec:
    """What a verb needs: a login, an argument, write permission; and its HELP syntax."""

    verb: str
    login: bool
    arg: Arg
    writes: bool = False
    syntax: str = ""
    # True for verbs that may run while a transfer is in progress (RFC 959 §4.1.3: ABOR,
    # STAT and QUIT are the "special" commands; NOOP costs nothing and clients use it as a
    # keep-alive during long transfers).
    during_transfer: bool = False


# RFC 775 spellings that Windows' ftp.exe and some old clients still send.
ALIASES: dict[str, str] = {
    "XCWD": "CWD",
    "XCUP": "CDUP",
    "XPWD": "PWD",
    "XMKD": "MKD",
    "XRMD": "RMD",
}

# RFC 959 verbs ftpsup knows and will never run: 502 "not implemented" (RFC 959 §4.2), in
# vsftpd's words (postlogin.c), rather than 500, which would say the verb is not FTP at all.
NOT_IMPLEMENTED = frozenset({"SMNT"})

# Requests from a web browser or proxy pointed at the FTP port (vsftpd 3.0.4 refuses them too).
HTTP_VERBS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE"})


@attrs.frozen
class Command:
    """One parsed command line: the verb in upper case and the raw argument text."""

    verb: str
    arg: str

    def loggable(self) -> str:
        """The line as it may appear in a log: never the password."""
        if self.verb == "PASS":
            return "PASS <hidden>"
        return f"{self.verb} {self.arg}".rstrip()


def parse_command(line: bytes) -> Command:
    """Split a command line into verb and argument.

    The argument is everything after the first space, kept as sent (file names may contain
    spaces, RFC 959 §5.3.1). Bytes that are not UTF-8 survive as surrogate escapes so a
    file name round-trips to the filesystem (RFC 2640 §2.2 asks servers to cope).

    Args:
        line: one line from the LineBuffer, without CRLF.

    Returns:
        The Command; an empty verb for an empty line.
    """
    text = line.decode("utf-8", errors="surrogateescape").lstrip(" ")
    verb, _, arg = text.partition(" ")
    verb = verb.upper()
    return Command(ALIASES.get(verb, verb), arg)


def precheck(
    cmd: Command, spec: CommandSpec | None, *, logged_in: bool, may_write: bool
) -> Reply | None:
    """The reply that stops `cmd` before its handler runs, or None to go ahead.

    `spec` is the verb's row of the command table (proto.session.table), None for a verb
    ftpsup does not know. The order is RFC 959's: unknown verb (500) or one never implemented
    (502), not logged in (530), argument problems (501), permission (550).
    """
    if cmd.verb in NOT_IMPLEMENTED:
        return reply(502, f"{cmd.verb} not implemented.")
    if spec is None:
        return reply(500, "Unknown command.")
    if spec.login and not logged_in:
        return reply(530, "Please login with USER and PASS.")
    if spec.arg is Arg.REQUIRED and not cmd.arg.strip():
        return reply(501, f"Syntax: {spec.syntax}")
    if spec.arg is Arg.NONE and cmd.arg.strip():
        return reply(501, f"{cmd.verb} takes no argument.")
    if spec.writes and not may_write:
        return reply(550, "Permission denied.")
    return None


def help_reply(topic: str, specs: Mapping[str, CommandSpec]) -> Reply:
    """214 reply for HELP and HELP <verb> (RFC 959 §4.1.3), from the command table `specs`."""
    topic = topic.strip().upper()
    if topic:
        spec = specs.get(ALIASES.get(topic, topic))
        if spec is None:
            return reply(502, f"Unknown command {topic}.")
        return reply(214, f"Syntax: {spec.syntax}")
    verbs = sorted(specs)
    rows = [" ".join(f"{v:<5}" for v in verbs[i : i + 8]).rstrip() for i in range(0, len(verbs), 8)]
    return reply(214, "The following commands are recognized.", *rows, "Help OK.")


def feature_lines(
    *,
    pasv_enable: bool,
    port_enable: bool,
    mlst_facts: str,
    ipv6: bool,
    mfmt: bool,
    tls: bool = False,
    implicit: bool = False,
) -> list[str]:
    """RFC 2389 FEAT lines for what this session can actually do, sorted.

    Args:
        pasv_enable: passive mode is on (EPSV, and PASV over IPv4).
        port_enable: active mode is on (EPRT).
        mlst_facts: the MLST line's facts, the selected ones starred.
        ipv6: the control connection is IPv6, where PASV always answers 522 (RFC 2428 §2).
        mfmt: MFMT may run: write_enable before login, the session's own right after it.
        tls: FTPS is offered.
        implicit: the instance is implicit FTPS.
    """
    features = [f"MLST {mlst_facts}", "MDTM", "REST STREAM", "SIZE", "TVFS", "UTF8"]
    if mfmt:
        features.append("MFMT")
    if tls:
        # RFC 4217 §6: AUTH TLS, PBSZ and PROT are listed whenever TLS is offered; an implicit
        # instance is TLS from the first byte, so it has nothing to AUTH.
        features += ["PBSZ", "PROT"] + ([] if implicit else ["AUTH TLS"])
    if pasv_enable:
        features += ["EPSV"] + ([] if ipv6 else ["PASV"])
    if port_enable:
        features.append("EPRT")
    return sorted(features)
