"""The `ftpsup user` commands as an admin runs them: add, list, passwd and del round trips,
read-only and disabled users, and refusals.

Every call is a real `python -m ftpsup` subprocess with a timeout, so a hang fails fast.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ftpsup.users.hashing import verify_password
from ftpsup.users.store import load_users
from tests.integration.cli.commands import ftpsup

# -- ftpsup user ---------------------------------------------------------------------------

SECRET = "correct horse battery"


def user(
    config_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return ftpsup("--config-dir", str(config_dir), "user", *args, stdin=stdin)


def test_user_add_list_passwd_del_round_trip(config_dir: Path, tmp_path: Path) -> None:
    store = config_dir / "users.toml"
    home = tmp_path / "homes" / "bob"
    added = user(
        config_dir, "add", "bob", "--home", str(home), "--password-stdin", stdin=SECRET + "\n"
    )
    assert added.returncode == 0, added.stderr
    assert home.is_dir()
    assert verify_password(SECRET, load_users(store)["bob"].password_hash)

    listed = user(config_dir, "list")
    assert listed.returncode == 0
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["NAME", "HOME", "WRITE", "ENABLED"]
    assert ["bob", str(home), "yes", "yes"] in rows
    assert SECRET not in listed.stdout + listed.stderr
    assert "correct" not in listed.stdout
    assert load_users(store)["bob"].password_hash not in listed.stdout

    changed = user(config_dir, "passwd", "bob", "--password-stdin", stdin="new secret\n")
    assert changed.returncode == 0, changed.stderr
    stored = load_users(store)["bob"].password_hash
    assert verify_password("new secret", stored)
    assert not verify_password(SECRET, stored)

    deleted = user(config_dir, "del", "bob")
    assert deleted.returncode == 0, deleted.stderr
    assert "bob" not in load_users(store)
    assert home.is_dir(), "del keeps the home directory"
    relisted = user(config_dir, "list")
    assert "bob" not in relisted.stdout


def test_user_list_shows_read_only_and_disabled(config_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "carol"
    assert (
        user(
            config_dir,
            "add",
            "carol",
            "--home",
            str(home),
            "--read-only",
            "--password-stdin",
            stdin="pw carol\n",
        ).returncode
        == 0
    )
    assert user(config_dir, "disable", "carol").returncode == 0
    rows = [line.split() for line in user(config_dir, "list").stdout.splitlines()]
    assert ["carol", str(home), "no", "no"] in rows


def test_user_add_twice_is_refused_without_replace(config_dir: Path, tmp_path: Path) -> None:
    args = ("add", "dave", "--home", str(tmp_path / "dave"), "--password-stdin")
    assert user(config_dir, *args, stdin="first one\n").returncode == 0
    again = user(config_dir, *args, stdin="second one\n")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert verify_password("first one", load_users(config_dir / "users.toml")["dave"].password_hash)


def test_user_passwd_of_an_unknown_user_fails(config_dir: Path) -> None:
    result = user(config_dir, "passwd", "nobody", "--password-stdin", stdin="x\n")
    assert result.returncode == 1
    assert "nobody" in result.stderr


def test_user_add_refuses_an_empty_password(config_dir: Path, tmp_path: Path) -> None:
    result = user(
        config_dir, "add", "erin", "--home", str(tmp_path / "erin"), "--password-stdin", stdin="\n"
    )
    assert result.returncode == 1
    assert "erin" not in load_users(config_dir / "users.toml")
