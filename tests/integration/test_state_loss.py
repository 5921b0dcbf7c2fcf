"""State that vanishes under a running server: the user store and the state directory.

A user store that is emptied or deleted must not lock everyone out in silence: the instance
keeps its last good copy, logs one ERROR, and takes a valid store as soon as there is one.
"""

from __future__ import annotations

import ftplib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import PASSWORD, USER, Server, add_user, wait_for_log

TIMEOUT = 10
ServerFactory = Callable[..., Server]


def user_cli(config_dir: Path, *args: str) -> None:
    command = [sys.executable, "-m", "ftpsup", "--config-dir", str(config_dir), "user", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def login_reply(srv: Server, user: str, password: str) -> str:
    ftp = srv.connect(login=False, timeout=TIMEOUT)
    try:
        return ftp.login(user, password)
    except ftplib.Error as exc:
        return str(exc)
    finally:
        ftp.close()


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_an_emptied_or_deleted_user_store_keeps_the_last_good_copy_and_says_so(
    server_factory: ServerFactory, damage: str
) -> None:
    srv = server_factory("127.0.0.1")
    store = srv.config_dir / "users.toml"
    assert login_reply(srv, USER, PASSWORD).startswith("230")

    if damage == "emptied":
        store.write_bytes(b"")
    else:
        store.unlink()
    replies = [login_reply(srv, USER, PASSWORD)[:3] for _ in range(3)]
    logs = wait_for_log(srv, "ERROR: ")

    assert replies == ["230"] * 3
    errors = [line for line in logs.splitlines() if "ERROR: " in line]
    assert len(errors) == 1, errors  # once per change, not once per login
    assert str(store) in errors[0]
    assert "keeping the last good copy (1 users)" in errors[0]

    # A valid store is taken at once: here one that has only bob.
    store.unlink(missing_ok=True)
    add_user(srv.config_dir, "bob", "bob's password", srv.home.parent / "bob")
    assert login_reply(srv, "bob", "bob's password").startswith("230")
    assert login_reply(srv, USER, PASSWORD).startswith("530")
    assert "usable again" in wait_for_log(srv, "usable again")
    assert srv.process.poll() is None


def test_deleting_the_last_user_locks_everyone_out_without_an_error(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1")
    assert login_reply(srv, USER, PASSWORD).startswith("230")

    user_cli(srv.config_dir, "del", USER)

    assert login_reply(srv, USER, PASSWORD).startswith("530")
    assert "ERROR: " not in srv.log_text()
