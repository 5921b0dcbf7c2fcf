"""openat2(2) with RESOLVE_IN_ROOT, called through ctypes: the kernel's chroot for one open.

Theory of operation: Python has no binding for openat2, so the libc `syscall` entry point is
loaded once, at import, and called with the system call number and an `open_how` structure.
RESOLVE_IN_ROOT makes the directory fd act as "/" while the path resolves: "..", absolute and
relative symlinks all stay under it. RESOLVE_NO_MAGICLINKS refuses /proc-style links, which
could otherwise lead anywhere.

Rules:
- The call number is known only for the machines listed; elsewhere `openat2` fails with ENOSYS
  rather than guess a number, and the jail falls back to its O_NOFOLLOW walk.
- EAGAIN (a concurrent rename raced a ".." step) and EINTR are retried a bounded number of
  times; any other failure is an OSError with the kernel's errno.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Callable

# openat2 is 437 on these machines; elsewhere the walk is used rather than guess a number.
_SYS_OPENAT2 = 437
_OPENAT2_MACHINES = frozenset({"x86_64", "aarch64", "arm64"})
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_EAGAIN_TRIES = 8  # openat2 answers EAGAIN when a concurrent rename races a ".." step


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def _load_syscall() -> Callable[..., int] | None:
    if platform.machine() not in _OPENAT2_MACHINES:
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    func.restype = ctypes.c_long
    func.argtypes = [
        ctypes.c_long,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.POINTER(_OpenHow),
        ctypes.c_size_t,
    ]
    syscall: Callable[..., int] = func
    return syscall


_syscall = _load_syscall()


def openat2(dirfd: int, path: bytes, flags: int, mode: int) -> int:
    """Open `path` with `dirfd` as its root (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).

    Returns:
        The new fd; the caller closes it.

    Raises:
        OSError: the kernel's errno; ENOSYS when this machine has no known call number.
    """
    if _syscall is None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    how = _OpenHow(flags, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    err = errno.EAGAIN
    for _ in range(_EAGAIN_TRIES):
        fd = int(_syscall(_SYS_OPENAT2, dirfd, path, ctypes.byref(how), ctypes.sizeof(how)))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            break
    raise OSError(err, os.strerror(err))
