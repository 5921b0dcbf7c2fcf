"""JSON lines: how the supervisor, its instances and the command line frame their messages.

Every channel between ftpsup's processes (the control socket, an instance's status channel,
`ftpsup start`'s report pipe) carries one JSON object per line, UTF-8, ended by "\\n". An
instance's stdout and stderr are read with the same line splitter, as plain text.

Sans-I/O: callers read bytes from their stream or pipe and feed them to a `LineReader`, which
hands back complete lines; `encode` gives the bytes to write. Nothing here blocks or reads a
clock, so the whole framing is tested without sockets (tests/test_jsonlines.py).

Rules:
1. A line is bounded: whatever a peer writes, a reader holds at most `max_line` bytes of an
   unfinished line, plus one read. An instance runs as nopriv_user, so a child writing without
   line ends must never grow the supervisor's memory without bound.
2. What happens to an over-long line is the reader's choice, made once: `split_long` hands it
   on in pieces of `max_line` bytes (log output, where every byte is worth keeping); otherwise
   it is dropped up to its line end and `overflowed` says so (messages, where a piece of JSON
   means nothing).
3. `decode` never raises: a line that is not a JSON object is None, and the caller skips it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping


def encode(message: Mapping[str, object]) -> bytes:
    """One message as the bytes of its line, "\\n" included."""
    return json.dumps(message).encode() + b"\n"


def decode(line: bytes) -> dict[str, object] | None:
    """The JSON object on `line`, or None when it is not valid JSON or not an object."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


class LineReader:
    """Bytes in, complete lines out (without their "\\n"), with a bound on a line's length."""

    def __init__(self, max_line: int, *, split_long: bool = False) -> None:
        """Start with no unfinished line.

        Args:
            max_line: the most bytes of one unfinished line kept between reads.
            split_long: hand an over-long line on in pieces of `max_line` bytes, rather than
                dropping it.
        """
        self.max_line = max_line
        self.split_long = split_long
        # Times an over-long line was dropped (never with split_long).
        self.overflowed = 0
        # The unfinished line, in the pieces it came in: joined only once its "\n" arrives,
        # so a long line costs one copy, not one per read.
        self._pending: list[bytes] = []
        self._pending_size = 0
        # Inside a dropped line: everything up to its "\n" is thrown away.
        self._skipping = False

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """The lines that `data` completes, in order."""
        if b"\n" in data:
            lines = b"".join([*self._pending, data]).split(b"\n")
            self._pending, self._pending_size = [], 0
            if self._skipping:
                # The first "\n" ends the line being dropped.
                self._skipping = False
                del lines[0]
            unfinished = lines.pop()
        else:
            lines, unfinished = [], bytes(data)
        if self._skipping or not unfinished:
            return lines
        self._pending.append(unfinished)
        self._pending_size += len(unfinished)
        if self._pending_size > self.max_line:
            pending = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
            if self.split_long:
                while len(pending) > self.max_line:
                    lines.append(pending[: self.max_line])
                    pending = pending[self.max_line :]
                self._pending, self._pending_size = [pending], len(pending)
            else:
                self.overflowed += 1
                self._skipping = True
        return lines

    def pending_size(self) -> int:
        """How many bytes of an unfinished line are held now."""
        return self._pending_size

    def rest(self) -> bytes:
        """The unfinished line at the end of the stream ("" when the last line was ended)."""
        rest = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        return rest
