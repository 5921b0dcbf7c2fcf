"""Throwaway system accounts for the tests that drop root (made with useradd, removed after)."""

from __future__ import annotations

import contextlib
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def account_name() -> str:
    """A fresh account name no host has (useradd allows 32 characters)."""
    return "ftpsupt" + secrets.token_hex(4)


def remove_account(name: str) -> None:
    """Delete the account and its own group, if they exist."""
    subprocess.run(["userdel", name], capture_output=True, timeout=60, check=False)
    subprocess.run(["groupdel", name], capture_output=True, timeout=60, check=False)


@contextlib.contextmanager
def throwaway_account() -> Iterator[pwd.struct_passwd]:
    """A new system account with its own group, no home and no login shell."""
    name = account_name()
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        + [name],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        remove_account(name)


@contextlib.contextmanager
def passable_tmp(prefix: str = "ftpsup-") -> Iterator[Path]:
    """A temporary directory other accounts can pass (pytest's base is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
