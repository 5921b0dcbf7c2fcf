"""Helpers of the JailedFs tests: the Jail a test gets from the `jail` fixture (conftest.py), and
reading, writing and catching the errno of a call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from ftpsup.server.fs import JailedFs


@attrs.frozen
class Jail:
    fs: JailedFs
    home: Path
    outside: Path

    @property
    def chroot(self) -> bool:
        """True when symlinks resolve inside the home (openat2) instead of being refused."""
        return self.fs.uses_openat2


def openat2_available(path: Path) -> bool:
    """True when JailedFs can use openat2 for a home at `path` on this kernel."""
    try:
        JailedFs(path, use_openat2=True).close()
    except OSError:
        return False
    return True


def read_all(fd: int) -> bytes:
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def errno_of(fn: Callable[[], object]) -> int:
    """The errno of the OSError `fn` raises; fails the test when it raises none."""
    try:
        fn()
    except OSError as exc:
        return exc.errno if exc.errno is not None else -1
    pytest.fail("no OSError raised")
