"""An instance started as root becomes nopriv_user for good, once it has loaded.

Theory of operation: the interpreter and the ftpsup package may live where only root can read
them (pyenv under /root, mode 0700), so the process cannot start as the account; it starts as
root instead and loads first: every module it will ever import (`preload`), its log files, its
listening socket. Then `drop` makes it the account: no supplementary groups, real, effective
and saved uid and gid all the account's (so it can never switch back), no_new_privs (no exec
can gain privilege), and no capabilities. One exception: with connect_from_port_20 on a port
below the unprivileged range, CAP_NET_BIND_SERVICE stays effective and permitted (never
inheritable or ambient), the only way an active data connection can leave from port 20.

The kernel's word is final: after the drop the process reads /proc/self/status, and anything
but the expected identity and capability sets ends it (`PrivilegeError`), before any client
is served.
"""

from __future__ import annotations

import ctypes
import importlib
import os
from pathlib import Path

import attrs

from ftpsup.users.accounts import Account

CAP_NET_BIND_SERVICE = 10
_PR_SET_KEEPCAPS = 8
_PR_SET_NO_NEW_PRIVS = 38
_CAPABILITY_VERSION_3 = 0x20080522

# Imported on first use by the stdlib or by ftpsup: an import after the drop could fail when
# the package directory is unreadable to the account.
_LAZY_MODULES = (
    # socket.getaddrinfo encodes str host names with the idna codec.
    "encodings.idna",
    "encodings.ascii",
    "encodings.latin_1",
    "encodings.utf_8",
    "stringprep",
    "unicodedata",
    # time.strptime / datetime.strptime.
    "_strptime",
    # Everything the sessions use, which the start path may not have imported yet.
    "ftpsup.server.session",
    "ftpsup.server.control",
    "ftpsup.server.accepting",
    "ftpsup.server.data",
    "ftpsup.server.transfer.copying",
    "ftpsup.server.workers",
    "ftpsup.server.tls",
    "ftpsup.server.tls_data",
    "ftpsup.server.listings",
    "ftpsup.server.executor",
    "ftpsup.server.fs_calls",
    "ftpsup.server.login",
    "ftpsup.server.reading",
    "ftpsup.server.tls_start",
    "ftpsup.server.transfer.owner",
    "ftpsup.server.transfer.task",
    "ftpsup.proto.session.machine",
    "ftpsup.server.anchors",
    "ftpsup.server.fs",
    "ftpsup.server.fs.openat2",
    "ftpsup.server.fs.jail",
    "ftpsup.server.fs.files",
    "ftpsup.server.fs.tree",
    "ftpsup.server.fs.facts",
    "ftpsup.tls.contexts",
    "ftpsup.tls.certs",
)


class PrivilegeError(Exception):
    """The process could not become the account, or the kernel reports otherwise."""


@attrs.frozen
class Credentials:
    """A process's identity and capability sets, as /proc/<pid>/status shows them."""

    uids: tuple[int, ...]
    gids: tuple[int, ...]
    groups: tuple[int, ...]
    cap_inh: int
    cap_prm: int
    cap_eff: int
    cap_amb: int
    no_new_privs: int


def read_credentials(status_path: Path = Path("/proc/self/status")) -> Credentials:
    """Parse the identity and capability lines of a /proc status file."""
    fields: dict[str, list[str]] = {}
    for line in status_path.read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.split()

    def ids(name: str) -> tuple[int, ...]:
        return tuple(int(v) for v in fields.get(name, []))

    def mask(name: str) -> int:
        return int(fields.get(name, ["0"])[0], 16)

    return Credentials(
        uids=ids("Uid"),
        gids=ids("Gid"),
        groups=ids("Groups"),
        cap_inh=mask("CapInh"),
        cap_prm=mask("CapPrm"),
        cap_eff=mask("CapEff"),
        cap_amb=mask("CapAmb"),
        no_new_privs=int(fields.get("NoNewPrivs", ["0"])[0]),
    )


def credential_problems(creds: Credentials, account: Account, allowed_caps: int) -> list[str]:
    """How `creds` differ from a process that is `account` with at most `allowed_caps`."""
    expected = {
        "Uid": (creds.uids, (account.uid,) * 4),
        "Gid": (creds.gids, (account.gid,) * 4),
        "Groups": (creds.groups, ()),
        "CapInh": (creds.cap_inh, 0),
        "CapAmb": (creds.cap_amb, 0),
        "CapPrm": (creds.cap_prm, allowed_caps),
        "CapEff": (creds.cap_eff, allowed_caps),
        "NoNewPrivs": (creds.no_new_privs, 1),
    }
    return [f"{name} is {got}, not {want}" for name, (got, want) in expected.items() if got != want]


def needs_bind_service(connect_from_port_20: bool, ftp_data_port: int) -> bool:
    """Whether active connections from `ftp_data_port` need CAP_NET_BIND_SERVICE."""
    if not connect_from_port_20:
        return False
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return ftp_data_port < int(f.read().strip())
    except (OSError, ValueError):
        return ftp_data_port < 1024


def preload() -> None:
    """Import what would otherwise be imported after the drop."""
    for name in _LAZY_MODULES:
        importlib.import_module(name)
    # The codec lookup caches by name: look each one up once, as the server will.
    for codec in ("idna", "ascii", "latin-1", "utf-8"):
        "x".encode(codec)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc_call(libc: ctypes.CDLL, name: str, *args: object) -> None:
    if getattr(libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise PrivilegeError(f"{name} failed: {os.strerror(errno)}")


def _set_capabilities(libc: ctypes.CDLL, caps: int) -> None:
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        word = (caps >> (32 * i)) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = word
        data[i].inheritable = 0
    _libc_call(libc, "capset", ctypes.byref(header), data)


def drop(account: Account, *, keep_bind_service: bool = False) -> Credentials:
    """Become `account` for good; return the credentials the kernel reports afterwards.

    Raises:
        PrivilegeError: a step failed, or the kernel reports more than was left.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    allowed = 1 << CAP_NET_BIND_SERVICE if keep_bind_service else 0
    try:
        os.setgroups([])
        os.setresgid(account.gid, account.gid, account.gid)
        if allowed:
            # Keep the permitted set across the uid change, to take all but one away after.
            _libc_call(libc, "prctl", _PR_SET_KEEPCAPS, 1, 0, 0, 0)
        os.setresuid(account.uid, account.uid, account.uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot become {account.name}: {exc.strerror}") from None
    # Also empties the inheritable set, which a uid change leaves alone.
    _set_capabilities(libc, allowed)
    if allowed:
        _libc_call(libc, "prctl", _PR_SET_KEEPCAPS, 0, 0, 0, 0)
    _libc_call(libc, "prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    creds = read_credentials()
    problems = credential_problems(creds, account, allowed)
    if problems:
        raise PrivilegeError(
            f"still privileged after becoming {account.name}: " + "; ".join(problems)
        )
    return creds
