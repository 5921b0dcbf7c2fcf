"""LineBuffer: turns the bytes of a control connection into command lines.

Rules:
- No I/O: the caller feeds whatever it received and asks for lines until it gets None.
- A line ends at LF; a CR right before the LF is dropped, so CRLF and bare LF both work
  (RFC 959 §4.1.1 asks for CRLF; some clients send LF alone).
- Telnet commands are taken out of the stream (RFC 959 §4.1 puts the control connection on
  Telnet, RFC 854): IAC IAC is a data byte 0xFF, IAC WILL/WONT/DO/DONT plus an option byte is
  dropped, IAC plus any other command byte is dropped. The parser keeps its Telnet state
  between feeds, so a sequence split across two reads decodes the same as in one read.
- Memory and work are bounded: a line may hold at most `max_length` bytes (after Telnet
  decoding, not counting the line end), and take at most twice that on the wire (every byte
  escaped as IAC IAC). A longer line gives exactly one LineTooLong, at the moment it
  overflows, and its remaining bytes are skipped up to the LF without being stored.
- Lines come out in the order they arrived, so pipelined commands keep their order.
"""

from __future__ import annotations

import re

import attrs

_IAC = 0xFF
_WILL = 0xFB
_DONT = 0xFE
_DM = 0xF2
_LF = 0x0A
_CR = 0x0D
# RFC 854 assigns the command codes 240..254; 255 is IAC itself.
_FIRST_COMMAND = 0xF0

# A run of whole Telnet tokens up to the next line end: IAC with any byte but LF and 0xFB..0xFE
# (IAC IAC among them), IAC WILL/WONT/DO/DONT (0xFB..0xFE) with its option byte, or plain
# bytes. It stops at a line-ending LF, at "IAC LF", at an IAC sequence cut off by the end of the
# data, and after _TOKENS_PER_MATCH tokens. The regular expression engine does the scanning, so
# even a flood of IAC bytes costs little. The IAC branches come first: the engine skips a
# branch whose first literal byte does not match without entering it, which halves the cost of
# an IAC flood.
#
# The repeat is a plain greedy one. A possessive one ("*+") is wrong on CPython before 3.11.5
# (gh-100061, gh-106052): when an iteration fails partway, the match keeps the bytes that
# iteration had taken, so "A IAC WILL" whose option byte was still on the way matched up to the
# WILL and the IAC was lost. Nothing follows the repeat, so a greedy one never backtracks; it
# keeps a frame per iteration, though, hence the bound on tokens per match.
_TOKENS_PER_MATCH = 128
_TOKENS = re.compile(
    rb"(?:\xff[^\xfb-\xfe\n]|\xff[\xfb-\xfe][\s\S]|[^\xff\n]+){0,%d}" % _TOKENS_PER_MATCH
)
# One IAC sequence inside a run of whole tokens.
_IAC_SEQUENCE = re.compile(rb"\xff(?:[\xfb-\xfe][\s\S]|[\s\S])")


def _decode_iac(match: re.Match[bytes]) -> bytes:
    sequence = match.group()
    second = sequence[1]
    if second == _IAC:
        return b"\xff"
    if second >= _FIRST_COMMAND:
        return b""
    # Not a Telnet command: drop the IAC alone and keep the byte. A client that sends
    # "IAC IP IAC DM" with DM as TCP urgent data can lose the DM byte in transit, leaving
    # "IAC ABOR"; this keeps the "A".
    return sequence[1:]


@attrs.frozen
class LineTooLong:
    """A line went past the length limit; the server answers it with one error reply."""

    length_limit: int


class LineBuffer:
    """Decodes a control connection's byte stream into lines.

    Bytes are decoded as soon as they are fed, so only the unfinished line (at most
    `max_length` + 1 bytes) and the finished lines not yet taken are held.
    """

    def __init__(self, max_length: int = 4096) -> None:
        """Creates an empty buffer.

        Args:
            max_length: the longest line accepted, in bytes, without its line end.

        Raises:
            ValueError: if max_length is below 1.
        """
        if max_length < 1:
            raise ValueError("max_length must be at least 1")
        self._max_length = max_length
        self._line = bytearray()
        self._discarding = False
        self._raw_length = 0
        self._carry = b""
        # A list read through an index, not a deque: a deque preallocates a 64-slot block,
        # and an idle session should cost as little memory as possible.
        self._ready: list[bytes | LineTooLong] = []
        self._taken = 0

    def feed(self, data: bytes) -> None:
        """Adds received bytes; any lines they complete become available from next_line."""
        if (
            data.endswith(b"\n")
            and not (self._carry or self._line or self._discarding or self._raw_length)
            and len(data) <= self._max_length + 2
            and data.count(b"\n") == 1
            and b"\xff" not in data
        ):
            # The common case, one whole command per read: the same outcome as the general
            # path below (a line under the slack of _take, ended by _end_line), built at once.
            line = data[:-2] if data.endswith(b"\r\n") else data[:-1]
            if len(line) > self._max_length:
                self._ready.append(LineTooLong(self._max_length))
            else:
                self._ready.append(line[1:] if line and line[0] == _DM else line)
            return
        if self._carry:
            data = self._carry + data
            self._carry = b""
        end = len(data)
        pos = 0
        # Up to the first IAC (for most clients, all of it) an LF alone ends a line.
        plain_end = data.find(b"\xff")
        if plain_end < 0:
            plain_end = end
        while pos < plain_end:
            stop = data.find(b"\n", pos, plain_end)
            if stop < 0:
                self._take(data, pos, plain_end)
                pos = plain_end
            else:
                if stop > pos:
                    self._take(data, pos, stop)
                self._end_line()
                pos = stop + 1
        while pos < end:
            match = _TOKENS.match(data, pos)
            stop = match.end() if match is not None else pos
            if stop > pos:
                self._take(data, pos, stop)
            if stop == end:
                return
            if data[stop] == _LF:
                self._end_line()
                pos = stop + 1
            elif data[stop] != _IAC:
                # The match ended at its token bound, between two tokens.
                pos = stop
            elif stop + 1 == end or (stop + 2 == end and _WILL <= data[stop + 1] <= _DONT):
                # An IAC, or IAC WILL/WONT/DO/DONT, whose next byte has not arrived yet.
                self._carry = data[stop:]
                return
            elif data[stop + 1] == _LF:
                # "IAC LF" is no Telnet command: the IAC goes, the LF still ends the line.
                self._end_line()
                pos = stop + 2
            else:
                # A whole IAC sequence right at the token bound.
                pos = stop

    def next_line(self) -> bytes | LineTooLong | None:
        """Returns the next complete line (without its line end), or None if more data is needed.

        A LineTooLong takes the place of a line that went past the limit.
        """
        if self._taken < len(self._ready):
            item = self._ready[self._taken]
            self._taken += 1
            if self._taken == len(self._ready):
                self._ready, self._taken = [], 0
            return item
        return None

    def _take(self, data: bytes, start: int, stop: int) -> None:
        if self._discarding:
            return
        self._raw_length += stop - start
        # The raw bound keeps the work per line bounded too: IAC IAC doubles at most every
        # byte, so only a line padded with Telnet negotiation goes past it.
        if self._raw_length > 2 * (self._max_length + 1):
            self._overflow()
            return
        segment = data[start:stop]
        if b"\xff" in segment:
            segment = _IAC_SEQUENCE.sub(_decode_iac, segment)
        # One byte of slack: a line exactly at the limit may hold its CR while the LF is
        # still on the way.
        if len(self._line) + len(segment) > self._max_length + 1:
            self._overflow()
            return
        self._line += segment

    def _overflow(self) -> None:
        self._line.clear()
        self._discarding = True
        self._ready.append(LineTooLong(self._max_length))

    def _end_line(self) -> None:
        self._raw_length = 0
        if self._discarding:
            self._discarding = False
            return
        line = self._line
        if line and line[-1] == _CR:
            del line[-1]
        if len(line) > self._max_length:
            self._ready.append(LineTooLong(self._max_length))
        else:
            # Telnet "Synch" before ABOR (RFC 959 §4.1.3): the DM byte may arrive in-band
            # without its IAC once the urgent data has been folded into the stream.
            start = 1 if line and line[0] == _DM else 0
            self._ready.append(bytes(line[start:]))
        line.clear()
