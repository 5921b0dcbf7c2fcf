"""TYPE A conversion: local "\\n" line ends to the network's CRLF and back.

Rules:
- In TYPE A the data connection carries NVT-ASCII, whose line end is CRLF (RFC 959
  §3.1.1.1); on disk a Unix text file ends its lines with LF alone.
- Both converters keep state between chunks, so the output is the same whatever the chunk
  boundaries of the transfer: a CRLF split across two reads converts as one.
- Only line ends change; every other byte (including 8-bit data) passes through unchanged.
"""

from __future__ import annotations

import re

_BARE_LF = re.compile(rb"(?<!\r)\n")


class ToNetwork:
    """Converts a file for RETR in TYPE A: every LF becomes CRLF; a CRLF already there stays."""

    def __init__(self) -> None:
        self._after_cr = False

    def convert(self, chunk: bytes) -> bytes:
        """Returns the network form of the next chunk of the file."""
        if not chunk:
            return b""
        if self._after_cr and chunk[0] == 0x0A:
            # The CR of this CRLF ended the previous chunk.
            out = b"\n" + _BARE_LF.sub(b"\r\n", chunk[1:])
        else:
            out = _BARE_LF.sub(b"\r\n", chunk)
        self._after_cr = chunk[-1] == 0x0D
        return out


class FromNetwork:
    """Converts an upload for STOR in TYPE A: CRLF becomes LF; a CR alone is kept.

    A CR at the end of a chunk is held back until the next chunk shows whether an LF
    follows; call flush() at the end of the transfer to release it.
    """

    def __init__(self) -> None:
        self._held_cr = False

    def convert(self, chunk: bytes) -> bytes:
        """Returns the local form of the next chunk received."""
        data = b"\r" + chunk if self._held_cr else chunk
        self._held_cr = data.endswith(b"\r")
        if self._held_cr:
            data = data[:-1]
        return data.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        """Returns what is held back at the end of the transfer: a final lone CR, if any."""
        if self._held_cr:
            self._held_cr = False
            return b"\r"
        return b""
