"""ASCII numbers: the one parser for every number ftpsup reads from a client, a peer or a file.

Rules:
- Only the ASCII digits of the base count. `str.isdigit` also accepts "²" (which `int` then
  refuses with ValueError, a traceback if unguarded) and `int`, `str.isdecimal` and
  `str.isnumeric` accept every script's digits, so "REST ٣" would be taken as 3. No sign, no
  spaces, no "_", no "0x" prefix: callers strip the separators their syntax allows.
- Every number has an upper bound, checked on the text's length before `int` sees it: `int`
  costs quadratic time on long decimal text and refuses more than 4300 digits with
  ValueError. Leading zeros are allowed ("SITE UMASK 0022") and do not count.
- A bad number is `None`, never an exception: the caller picks the reply (501, 550...).
"""

from __future__ import annotations

_DIGITS = "0123456789abcdef"


def _width(maximum: int, base: int) -> int:
    width = 1
    while maximum >= base:
        maximum //= base
        width += 1
    return width


def parse_uint(text: str, maximum: int, *, base: int = 10) -> int | None:
    """Parse a non-negative integer written in ASCII digits of `base`, at most `maximum`.

    Args:
        text: the digits alone; anything else in it (space, sign, other scripts' digits)
            makes it invalid.
        maximum: the largest value accepted.
        base: 8 or 10 (2 to 16 work; letters are accepted in lower case only).

    Returns:
        The value, or None when `text` is empty, holds anything but digits of `base`, or is
        above `maximum`.
    """
    if not text or maximum < 0 or not 2 <= base <= 16:
        return None
    digits = _DIGITS[:base]
    if any(c not in digits for c in text):
        return None
    significant = text.lstrip("0") or "0"
    if len(significant) > _width(maximum, base):
        return None
    value = int(significant, base)
    return value if value <= maximum else None
