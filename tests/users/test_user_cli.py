"""Tests for the `ftpsup user` commands: add (homes, prompts, password rules), passwd, del,
disable, enable, list, and which store they use.
"""

from __future__ import annotations

import argparse
import io
import os
import stat
from pathlib import Path

import pytest

from ftpsup.cli import user as user_commands
from ftpsup.users.hashing import verify_password
from ftpsup.users.store import (
    load_users,
    save_users,
)
from tests.users.store_helpers import (
    _store_log_reaches_caplog,  # noqa: F401 (autouse)
    record,
)

# --- the `ftpsup user` commands ------------------------------------------------------------


def cli(
    monkeypatch: pytest.MonkeyPatch, store: Path, argv: list[str], stdin: str = ""
) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="ftpsup")
    user_commands.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    args.default_user_db = store
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    status = user_commands.run(args)
    return status, out.getvalue(), err.getvalue()


def test_cli_add_creates_user_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, home = tmp_path / "users.toml", tmp_path / "homes" / "alice"
    argv = ["user", "add", "alice", "--home", str(home), "--read-only", "--password-stdin"]
    status, _, err = cli(monkeypatch, store, argv, "s3cret pass\n")
    assert status == 0, err
    alice = load_users(store)["alice"]
    assert alice.home == home
    assert alice.may_write is False
    assert verify_password("s3cret pass", alice.password_hash)
    assert stat.S_IMODE(home.stat().st_mode) == 0o755


def test_cli_add_makes_the_homes_missing_parents_passable_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /srv/ftpsup for /srv/ftpsup/demo: the instances' account must pass it to reach the home.
    store, home = tmp_path / "users.toml", tmp_path / "srv" / "ftpsup" / "demo"
    argv = ["user", "add", "demo", "--home", str(home), "--password-stdin"]
    old_umask = os.umask(0o077)
    try:
        status, _, err = cli(monkeypatch, store, argv, "demo pass\n")
    finally:
        os.umask(old_umask)
    assert status == 0, err
    for directory in (tmp_path / "srv", tmp_path / "srv" / "ftpsup", home):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700  # what existed is left alone


def test_cli_add_home_defaults_under_srv_ftp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(user_commands, "DEFAULT_HOME_ROOT", tmp_path / "srv")
    store = tmp_path / "users.toml"
    status, _, _ = cli(
        monkeypatch, store, ["user", "add", "bob", "--password-stdin"], "pw of bob\n"
    )
    assert status == 0
    assert load_users(store)["bob"].home == tmp_path / "srv" / "bob"
    assert (tmp_path / "srv" / "bob").is_dir()


@pytest.mark.parametrize(("stdin", "problem"), [("\n", "empty password"), ("", "empty password")])
def test_cli_add_refuses_an_empty_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stdin: str, problem: str
) -> None:
    store = tmp_path / "users.toml"
    argv = ["user", "add", "alice", "--home", str(tmp_path / "a"), "--password-stdin"]
    status, _, err = cli(monkeypatch, store, argv, stdin)
    assert status == 1
    assert problem in err
    assert load_users(store) == {}


def test_cli_add_asks_twice_and_refuses_a_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["first", "second"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    store = tmp_path / "users.toml"
    status, _, err = cli(monkeypatch, store, ["user", "add", "alice", "--home", str(tmp_path)])
    assert status == 1
    assert "do not match" in err
    assert load_users(store) == {}


def test_cli_add_of_an_existing_user_fails_without_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "users.toml"
    argv = ["user", "add", "alice", "--home", str(tmp_path / "a"), "--password-stdin"]
    assert cli(monkeypatch, store, argv, "first one\n")[0] == 0
    status, _, err = cli(monkeypatch, store, argv, "second one\n")
    assert status == 1
    assert "already exists" in err
    assert cli(monkeypatch, store, [*argv, "--replace"], "second one\n")[0] == 0
    assert verify_password("second one", load_users(store)["alice"].password_hash)


def test_cli_passwd_del_disable_enable_and_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice", "/srv/a"), "bob": record("bob", "/srv/b")})
    assert (
        cli(monkeypatch, store, ["user", "passwd", "alice", "--password-stdin"], "new words\n")[0]
        == 0
    )
    assert verify_password("new words", load_users(store)["alice"].password_hash)
    assert cli(monkeypatch, store, ["user", "disable", "bob"])[0] == 0
    status, out, _ = cli(monkeypatch, store, ["user", "list"])
    assert status == 0
    lines = [line.split() for line in out.splitlines()]
    assert lines == [
        ["NAME", "HOME", "WRITE", "ENABLED"],
        ["alice", "/srv/a", "yes", "yes"],
        ["bob", "/srv/b", "yes", "no"],
    ]
    assert "$scrypt" not in out
    assert cli(monkeypatch, store, ["user", "enable", "bob"])[0] == 0
    assert load_users(store)["bob"].enabled
    assert cli(monkeypatch, store, ["user", "del", "alice"])[0] == 0
    assert sorted(load_users(store)) == ["bob"]


def test_cli_errors_exit_1_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "users.toml"
    status, _, err = cli(monkeypatch, store, ["user", "del", "ghost"])
    assert status == 1
    assert "no user 'ghost'" in err
    status, _, err = cli(monkeypatch, store, ["user", "passwd", "ghost", "--password-stdin"], "x\n")
    assert status == 1
    assert "no user 'ghost'" in err
    status, _, err = cli(monkeypatch, store, ["user", "add", "ftp", "--password-stdin"], "x\n")
    assert status == 1
    assert "reserved" in err


def test_cli_user_db_option_wins_over_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default, chosen = tmp_path / "default.toml", tmp_path / "chosen.toml"
    save_users(chosen, {"alice": record("alice")})
    status, out, _ = cli(monkeypatch, default, ["user", "list", "--user-db", str(chosen)])
    assert status == 0
    assert "alice" in out
    assert not default.exists()


def test_cli_without_any_store_path_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser(prog="ftpsup")
    user_commands.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["user", "list"])
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    assert user_commands.run(args) == 1
    assert "no user store" in err.getvalue()


@pytest.mark.parametrize("command", ["add", "passwd"])
def test_cli_refuses_a_password_under_8_characters_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice", "/srv/a")})
    argv = ["user", command, "bob" if command == "add" else "alice", "--password-stdin"]
    if command == "add":
        argv += ["--home", str(tmp_path / "b")]
    before = store.read_bytes()
    status, _, err = cli(monkeypatch, store, argv, "1234567\n")
    assert status == 1
    assert "shorter than 8 characters (--allow-weak accepts it)" in err
    assert store.read_bytes() == before
    assert cli(monkeypatch, store, argv, "12345678\n")[0] == 0
    assert (
        cli(monkeypatch, store, [*argv, "--replace"] if command == "add" else argv, "x\n")[0] == 1
    )
    weak = [*argv, "--allow-weak"] + (["--replace"] if command == "add" else [])
    assert cli(monkeypatch, store, weak, "x\n")[0] == 0
    name = argv[2]
    assert verify_password("x", load_users(store)[name].password_hash)
