"""Directory listings for LIST, NLST, MLSD, MLST and STAT <path>, built in a worker thread.

Rules:
- LIST takes `ls`-style flags ("-a", "-la") and ignores all but "a"; dot files are shown only
  with "a", as vsftpd and ls do. A file argument lists that one file (RFC 959 §4.1.3).
- Never a glob: a client pattern is never handed to fnmatch or the shell (vsftpd TRUST).
- Every line ends in CRLF: listings are sent as ASCII (RFC 959 §4.1.3).
- No name reaches the wire with a raw CR or LF, in any format (proto.listing.safe_name); the
  control connection's replies get the same from Reply.to_bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from ftpsup.proto.facts import FileFacts, FileKind
from ftpsup.proto.listing import WriteRights, list_line, mlsx_line, safe_name
from ftpsup.proto.session.state import SessionState
from ftpsup.server.fs import JailedFs


class NotADirectory(Exception):
    """MLSD was given a file (RFC 3659 §7.2: MLSD lists directories only)."""


def _utc_offset() -> int:
    return -time.altzone if time.daylight and time.localtime().tm_isdst else -time.timezone


@attrs.frozen
class ListingView:
    """What a listing shows and how: the home, the session's rights and facts, the clock.

    Read in a worker thread while the control loop waits for the listing: the session state
    does not change meanwhile.
    """

    fs: JailedFs
    state: SessionState
    clock: Callable[[], float]
    use_localtime: bool = False


def write_rights(st: SessionState) -> WriteRights:
    """The write verbs this session may run, asked of the same rule the pre-check applies."""
    return WriteRights(
        store=st.write_allowed("STOR"),
        append=st.write_allowed("APPE"),
        delete=st.write_allowed("DELE"),
        remove_dir=st.write_allowed("RMD"),
        rename=st.write_allowed("RNFR"),
        make_dir=st.write_allowed("MKD"),
    )


def format_entries(v: ListingView, verb: str, entries: list[FileFacts]) -> list[str]:
    if verb == "NLST":
        # Names alone, but with CR and LF shown as LIST and MLSD show them: a name holding
        # "\r\n" must not become two entries (or a forged line) in the client's parser.
        return [safe_name(f.name) for f in entries]
    if verb in ("MLSD", "MLST"):
        rights = write_rights(v.state)
        return [_selected(mlsx_line(f, rights=rights), v.state.mlst_facts) for f in entries]
    now = v.clock()
    offset = _utc_offset() if v.use_localtime else 0
    return [
        list_line(f, now=now, use_localtime=v.use_localtime, utc_offset=offset) for f in entries
    ]


def entries_for(v: ListingView, verb: str, vpath: str, flags: str) -> list[FileFacts]:
    """The entries a listing of `vpath` shows: a directory's children or the file itself."""
    facts = v.fs.stat(vpath)
    if facts.kind is not FileKind.DIR:
        if verb == "MLSD":
            raise NotADirectory(vpath)
        return [facts]
    entries = v.fs.listdir(vpath)
    if verb == "LIST" and "a" not in flags:
        entries = [f for f in entries if not f.name.startswith(".")]
    return entries


def build(v: ListingView, verb: str, vpath: str, flags: str) -> bytes:
    lines = format_entries(v, verb, entries_for(v, verb, vpath, flags))
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8", errors="surrogateescape")


def mlst_line(v: ListingView, vpath: str) -> str:
    """The fact line of MLST (RFC 3659 §7.2): the entry named by its full virtual path."""
    facts = v.fs.stat(vpath)
    line = mlsx_line(attrs.evolve(facts, name=vpath), rights=write_rights(v.state))
    return _selected(line, v.state.mlst_facts)


def stat_rows(v: ListingView, vpath: str, flags: str) -> list[str]:
    """STAT <path>: the rows LIST would send, for the control connection (RFC 959 §4.1.3)."""
    return format_entries(v, "LIST", entries_for(v, "LIST", vpath, flags))


def _selected(line: str, wanted: tuple[str, ...]) -> str:
    # RFC 3659 §7.9: after OPTS MLST only the chosen facts are sent. A fact value never holds
    # a space, so the first "; " ends the facts; with none chosen the line is " name".
    facts, _, name = line.partition("; ")
    names = {w.lower() for w in wanted}
    kept = [f for f in facts.split(";") if f.partition("=")[0].lower() in names]
    return "".join(f"{f};" for f in kept) + " " + name
