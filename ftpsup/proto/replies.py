"""Reply: one FTP reply, single- or multi-line, and its bytes on the wire.

Rules:
- Codes are three digits, 100 to 599 (RFC 959 §4.2).
- One line is "{code} {text}". Several lines are "{code}-{first}", then each middle line
  behind one space, then "{code} {last}" (RFC 959 §4.2). The leading space means a middle line
  that starts with digits can never pass for the last line, and it is also the form FEAT
  (RFC 2389 §3.2) and MLST (RFC 3659 §7.2) require: callers pass their lines without it.
- Text is UTF-8 (RFC 2640); names that were not UTF-8 were decoded with "surrogateescape"
  and go back out as their original bytes.
- A CR or LF inside a line goes out as a space, checked on the encoded bytes, so no text
  (a file name, an echoed argument) can end a reply early and inject another. RFC 959
  appendix II would send a CR in a 257 pathname as CR NUL, but clients differ on that and a
  path with CR or LF can never be named back to the server anyway (ftpsup.proto.paths
  refuses it), so the lossy, always safe space is used.
- Recent replies and their bytes are remembered (WIRE_CACHE entries each): most replies are
  the same few texts, sent by every session.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ftpsup.proto.addresses import format_pasv_host
from ftpsup.proto.memo import remembered

WIRE_CACHE = 512


def _check_code(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 100 <= value <= 599:
        raise ValueError(f"reply code must be within 100..599, not {value}")


def _check_lines(
    instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    if not value:
        raise ValueError("a reply needs at least one line")


def _to_lines(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _encode(text: str) -> bytes:
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A surrogate that does not stand for an original byte: show it as "?".
        data = text.encode("utf-8", "replace")
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


@attrs.frozen
class Reply:
    """One reply: a code and one or more lines of text."""

    code: int = attrs.field(validator=_check_code)
    lines: tuple[str, ...] = attrs.field(converter=_to_lines, validator=_check_lines)

    def to_bytes(self) -> bytes:
        """Returns the reply as sent on the control connection, CRLF after every line."""
        return _wire(self.code, self.lines)


@remembered(WIRE_CACHE)
def _wire(code: int, lines: tuple[str, ...]) -> bytes:
    digits = str(code).encode("ascii")
    if len(lines) == 1:
        return digits + b" " + _encode(lines[0]) + b"\r\n"
    parts = [digits + b"-" + _encode(lines[0]) + b"\r\n"]
    parts.extend(b" " + _encode(line) + b"\r\n" for line in lines[1:-1])
    parts.append(digits + b" " + _encode(lines[-1]) + b"\r\n")
    return b"".join(parts)


@remembered(WIRE_CACHE)
def reply(code: int, *lines: str) -> Reply:
    """Builds a Reply: reply(226, "Transfer complete."); a Reply is immutable, so a recent
    one with the same code and text is handed out again.

    Raises:
        ValueError: if the code is outside 100..599 or no line is given.
    """
    return Reply(code, lines)


def pasv_reply(ip: str, port: int) -> Reply:
    """Builds the 227 reply to PASV (RFC 959 §4.1.2 and §4.2, in the form clients parse).

    Args:
        ip: the IPv4 address (or IPv4-mapped IPv6 address) the client should connect to.
        port: the listening port, 1..65535.

    Raises:
        ValueError: if the port is out of range; AddressError (a ValueError) if `ip` is IPv6.
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be within 1..65535, not {port}")
    host = format_pasv_host(ip)
    return reply(227, f"Entering Passive Mode ({host},{port >> 8},{port & 0xFF}).")


def epsv_reply(port: int) -> Reply:
    """Builds the 229 reply to EPSV (RFC 2428 §3): "(|||port|)".

    Raises:
        ValueError: if the port is out of range.
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be within 1..65535, not {port}")
    return reply(229, f"Entering Extended Passive Mode (|||{port}|)")


def quote_path(path: str) -> str:
    """Quotes a pathname for a 257 reply (RFC 959 appendix II): '"' around, '"' doubled inside.

    The path is kept as it is; to_bytes does the CR/LF safety, once, for every reply.
    """
    return '"' + path.replace('"', '""') + '"'
