"""Listing formats: FileFacts turned into LIST lines, MLSx fact lines and MDTM/MFMT times.

Rules:
- No clock and no time zone lookups: `now` and the UTC offset come in as arguments.
- LIST (RFC 959 §4.1.3 leaves the format open) copies vsftpd's `ls -l` layout column for
  column, since FileZilla, WinSCP and lftp parse exactly that:
  "drwxr-xr-x    2 ftp      ftp          4096 Nov 27 08:21 name". Month names are English
  whatever the locale. Dates within the last 182 days (vsftpd's "six months"), or up to one
  hour ahead to absorb clock skew, show the time; others show the year.
- MLSD/MLST lines follow RFC 3659 §7: "fact=value;" pairs, one space, then the name. Times are
  UTC "YYYYMMDDHHMMSS" (RFC 3659 §2.3). A symlink that resolves is described as its target,
  so MLSD and MLST agree; the perm letters are exactly the commands the session may run.
- Lines come without their line end; the transfer code adds CRLF (RFC 959 §3.1.1.1).
- A CR or LF in a name is shown as "?" (as `ls -q` does), so a file created outside FTP cannot
  split one entry into two in the client's parser. NLST names go through the same safe_name.
- Times outside the years 1..9999 are clamped to that range rather than failing a listing.
"""

from __future__ import annotations

import calendar
import datetime
import re

import attrs

from ftpsup.proto.facts import FileFacts, FileKind

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIX_MONTHS = 182 * 24 * 60 * 60
_CLOCK_SKEW = 60 * 60
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MIN_TS = (datetime.datetime(1, 1, 1, tzinfo=datetime.UTC) - _EPOCH).total_seconds()
_MAX_TS = (
    datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC) - _EPOCH
).total_seconds()
_TIME_VAL = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})(?:\.([0-9]+))?"
)
_TYPE_CHAR = {FileKind.FILE: "-", FileKind.DIR: "d", FileKind.LINK: "l", FileKind.OTHER: "-"}


def _utc(ts: float) -> datetime.datetime:
    clamped = min(max(ts, _MIN_TS), _MAX_TS)
    return _EPOCH + datetime.timedelta(seconds=int(clamped // 1))


def safe_name(name: str) -> str:
    """The name with each CR and LF shown as "?", for every listing format (NLST included)."""
    return name.replace("\r", "?").replace("\n", "?")


def mode_string(kind: FileKind, mode: int) -> str:
    """Formats the type and permission bits the way `ls -l` does.

    setuid and setgid show as "s" over an execute bit and "S" without one; the sticky bit as
    "t" or "T" in the others' execute place.

    Args:
        kind: the entry's type, which gives the first character ("-", "d" or "l").
        mode: permission bits; only 0o7777 is read.

    Returns:
        Ten characters, e.g. "drwxr-xr-x".
    """
    chars = [_TYPE_CHAR[kind]]
    for shift, special, special_char in ((6, 0o4000, "s"), (3, 0o2000, "s"), (0, 0o1000, "t")):
        bits = (mode >> shift) & 0o7
        chars.append("r" if bits & 0o4 else "-")
        chars.append("w" if bits & 0o2 else "-")
        if mode & special:
            chars.append(special_char if bits & 0o1 else special_char.upper())
        else:
            chars.append("x" if bits & 0o1 else "-")
    return "".join(chars)


def _list_date(mtime: float, *, now: float, use_localtime: bool, utc_offset: int) -> str:
    shown = _utc(mtime + utc_offset if use_localtime else mtime)
    month = _MONTHS[shown.month - 1]
    if now - _SIX_MONTHS <= mtime <= now + _CLOCK_SKEW:
        return f"{month} {shown.day:02d} {shown.hour:02d}:{shown.minute:02d}"
    return f"{month} {shown.day:02d}  {shown.year:4d}"


def list_line(f: FileFacts, *, now: float, use_localtime: bool = False, utc_offset: int = 0) -> str:
    """Formats one entry as a LIST line, in vsftpd's `ls -l` layout.

    Args:
        f: the entry.
        now: the current time, seconds since the epoch, to choose between time and year.
        use_localtime: vsftpd's use_localtime; show times shifted by `utc_offset`.
        utc_offset: seconds east of UTC of the server's zone, used with `use_localtime`.

    Returns:
        The line without its line end; a link ends with " -> target".
    """
    date = _list_date(f.mtime, now=now, use_localtime=use_localtime, utc_offset=utc_offset)
    line = (
        f"{mode_string(f.kind, f.mode)} {f.nlink:4d} {f.owner:<8} {f.group:<8} "
        f"{f.size:8d} {date} {safe_name(f.name)}"
    )
    if f.kind is FileKind.LINK and f.link_target is not None:
        line += " -> " + safe_name(f.link_target)
    return line


@attrs.frozen
class WriteRights:
    """What a session may change, which decides the MLSx perm fact (RFC 3659 §7.5.5).

    One field per write verb, so each perm letter stands for exactly one command the session
    may run: an anonymous session with anon_mkdir_write_enable alone gets "m" on directories
    and no write letter on files.
    """

    store: bool = False  # STOR/STOU: "w" on a file, "c" in a directory
    append: bool = False  # APPE: "a" on a file
    delete: bool = False  # DELE: "d" on a file, "p" (purge its files) on a directory
    remove_dir: bool = False  # RMD: "d" on a directory
    rename: bool = False  # RNFR/RNTO: "f"
    make_dir: bool = False  # MKD: "m" in a directory


NO_WRITES = WriteRights()
ALL_WRITES = WriteRights(True, True, True, True, True, True)


def _letters(*pairs: tuple[str, bool]) -> str:
    return "".join(letter for letter, allowed in pairs if allowed)


def _mlsx_type_and_perm(f: FileFacts, rights: WriteRights) -> tuple[str, str]:
    # RFC 3659 §7.5.5 perm letters: files a(ppend) d(elete) f(rename) r(etrieve) w(rite);
    # directories c(reate) d(elete) e(nter) f(rename) l(ist) m(kdir) p(urge).
    # A link that resolves is described as its target (RETR and CWD follow it): lftp's
    # mirror and other MLSD clients skip an entry whose type is not file or dir. Only the
    # link itself is renamed or deleted, which the same letters cover.
    kind = f.target_kind if f.kind is FileKind.LINK and f.target_kind is not None else f.kind
    r = rights
    if kind is FileKind.FILE:
        return "file", _letters(
            ("a", r.append), ("d", r.delete), ("f", r.rename), ("r", True), ("w", r.store)
        )
    if kind is FileKind.DIR:
        return "dir", _letters(
            ("c", r.store),
            ("d", r.remove_dir),
            ("e", True),
            ("f", r.rename),
            ("l", True),
            ("m", r.make_dir),
            ("p", r.delete),
        )
    # A dangling link: nothing to read, only removable. "OS.unix=symlink" follows RFC 3659
    # erratum 1500; the "slink:target" form of the RFC's examples is not valid syntax.
    if kind is FileKind.LINK:
        return "OS.unix=symlink", _letters(("d", r.delete), ("f", r.rename))
    # Devices, FIFOs and sockets (also as a link's target): reading one could block a
    # transfer forever, so it is not offered as a file.
    return "OS.unix=special", ""


def mlsx_line(f: FileFacts, *, rights: WriteRights, facts_name: str | None = None) -> str:
    """Formats one entry as an MLSD line or as the fact line of an MLST reply (RFC 3659 §7).

    Args:
        f: the entry; a symlink that resolves is described as its target.
        rights: what the session may change, which decides the perm fact.
        facts_name: the name to print instead of `f.name`; MLST shows the full path asked for.

    Returns:
        e.g. "type=file;size=12;modify=20261127082100;perm=adfrw;unique=803g1a2;UNIX.mode=0644; a"
    """
    kind, perm = _mlsx_type_and_perm(f, rights)
    facts = [f"type={kind}"]
    if kind == "file":
        facts.append(f"size={f.size}")
    facts.append(f"modify={format_time_val(f.mtime)}")
    facts.append(f"perm={perm}")
    if f.unique:
        facts.append(f"unique={f.unique}")
    facts.append(f"UNIX.mode={f.mode & 0o7777:04o}")
    name = f.name if facts_name is None else facts_name
    return ";".join(facts) + "; " + safe_name(name)


def format_time_val(ts: float) -> str:
    """Formats a time as RFC 3659 §2.3 time-val, in UTC: "YYYYMMDDHHMMSS" (MDTM, MLSx modify).

    Fractions of a second are dropped (rounded down), and times outside the years 1..9999
    are clamped.
    """
    moment = _utc(ts)
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    )


def parse_time_val(text: str) -> float:
    """Parses an RFC 3659 §2.3 time-val, "YYYYMMDDHHMMSS[.sss]" in UTC (the MFMT argument).

    Returns:
        Seconds since the epoch.

    Raises:
        ValueError: if the text is not a time-val or names a date or time that does not exist.
    """
    match = _TIME_VAL.fullmatch(text)
    if match is None:
        raise ValueError(f"not a time value: {text!r}")
    year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
    # datetime checks every field's range, including the days of each month.
    moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    whole = calendar.timegm(moment.utctimetuple())
    fraction = match.group(7)
    return whole + (float("0." + fraction) if fraction else 0.0)
