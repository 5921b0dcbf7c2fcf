"""Test payloads and their digests, shared by the client tests (curl, lftp)."""

from __future__ import annotations

import functools
import hashlib
import random
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def payload(size: int) -> bytes:
    """Deterministic bytes that never repeat a block and start with CR, LF and NUL.

    A block moved, doubled or dropped, or any line-end or NUL conversion, changes the sha256.
    """
    head = b"line\r\nnext\nlast\r\x00"
    return (head + random.Random(size).randbytes(size))[:size]
