"""Tests for the user store file (ftpsup.users.store): loading and saving users.toml, its modes,
bad stores, and the locked read-modify-write of add, passwd, delete and disable.
"""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ftpsup.errors import UserStoreError
from ftpsup.users.hashing import hash_password, verify_password
from ftpsup.users.store import (
    UserRecord,
    add_user,
    delete_user,
    load_users,
    save_users,
    set_enabled,
    set_password,
)
from tests.users.store_helpers import (
    DIGEST,
    FAST,
    SALT,
    _store_log_reaches_caplog,  # noqa: F401 (autouse)
    record,
)

# --- load and save -------------------------------------------------------------------------


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    users = {
        "alice": record("alice", "/srv/ftp/alice"),
        "j.doe": record("j.doe", "/data/j doe", may_write=False, enabled=False),
    }
    save_users(store, users)
    assert load_users(store) == users


def test_save_is_mode_0600_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice")})
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.toml", "users.toml.lock"]


def test_save_keeps_group_read_and_drops_what_others_had(tmp_path: Path) -> None:
    # `ftpsup setup` shares the store with the instances' group (0640); a rewrite keeps that,
    # and never leaves hashes readable by others.
    store = tmp_path / "users.toml"
    store.write_text("")
    store.chmod(0o644)
    save_users(store, {"alice": record("alice")})
    assert stat.S_IMODE(store.stat().st_mode) == 0o640
    store.chmod(0o606)
    save_users(store, {"alice": record("alice")})
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_save_of_an_invalid_record_leaves_the_old_file(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice")})
    before = store.read_bytes()
    with pytest.raises(UserStoreError, match="absolute"):
        save_users(store, {"bob": record("bob", "relative/home")})
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.toml", "users.toml.lock"]


def test_missing_store_has_no_users(tmp_path: Path) -> None:
    assert load_users(tmp_path / "absent.toml") == {}


def test_write_and_enabled_default_to_true(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    stored = hash_password("pw", ln=FAST)
    store.write_text(f'[users.alice]\npassword = "{stored}"\nhome = "/srv/ftp/alice"\n')
    assert load_users(store)["alice"] == UserRecord("alice", stored, Path("/srv/ftp/alice"))


GOOD_HASH = f"$scrypt$ln=4,r=8,p=1${SALT}${DIGEST}"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("[users.alice\n", "not valid TOML"),
        ("", r"no \[users\] table"),
        (" \n\n", r"no \[users\] table"),
        ("# ftpsup user store: change it with `ftpsup user ...`\n\n", r"no \[users\] table"),
        ("users = 3\n", "users must be a table"),
        ("groups = {}\n", "unknown key"),
        ('[users.alice]\nhome = "/srv/a"\n', "users.alice: missing password"),
        (f'[users.alice]\npassword = "{GOOD_HASH}"\n', "users.alice: missing home"),
        (f'[users.alice]\npassword = "{GOOD_HASH}"\nhome = 5\n', "home must be a string"),
        (f'[users.alice]\npassword = "{GOOD_HASH}"\nhome = "srv/a"\n', "absolute"),
        (f'[users.alice]\npassword = "{GOOD_HASH}"\nhome = "/a"\nwrite = "yes"\n', "write"),
        (f'[users.alice]\npassword = "{GOOD_HASH}"\nhome = "/a"\nenabled = 1\n', "enabled"),
        (f'[users.alice]\npassword = "{GOOD_HASH}"\nhome = "/a"\nshell = "x"\n', "shell"),
        ('[users.alice]\npassword = "plaintext"\nhome = "/a"\n', "not a usable hash"),
        (f'[users.ftp]\npassword = "{GOOD_HASH}"\nhome = "/a"\n', "reserved"),
        (f'[users."-x"]\npassword = "{GOOD_HASH}"\nhome = "/a"\n', "invalid user name"),
    ],
)
def test_bad_store_is_refused_naming_file_and_problem(
    tmp_path: Path, body: str, problem: str
) -> None:
    store = tmp_path / "users.toml"
    store.write_text(body)
    with pytest.raises(UserStoreError, match=problem) as info:
        load_users(store)
    assert str(store) in str(info.value)


# --- read-modify-write ---------------------------------------------------------------------


def test_add_user_creates_the_store_and_its_lock(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    added = add_user(store, "alice", "pw", Path("/srv/ftp/alice"), may_write=False)
    assert load_users(store) == {"alice": added}
    assert added.may_write is False
    assert added.enabled is True
    assert verify_password("pw", added.password_hash)
    assert (tmp_path / "users.toml.lock").exists()


def test_add_existing_user_is_refused_unless_replace(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    add_user(store, "alice", "one", Path("/a"))
    with pytest.raises(UserStoreError, match="already exists"):
        add_user(store, "alice", "two", Path("/b"))
    add_user(store, "alice", "two", Path("/b"), replace=True)
    alice = load_users(store)["alice"]
    assert alice.home == Path("/b")
    assert verify_password("two", alice.password_hash)


@pytest.mark.parametrize(
    ("name", "password", "home", "problem"),
    [
        ("alice", "", "/a", "empty password"),
        ("alice", "a\r\nb", "/a", "CR, LF"),
        ("alice", "pw", "rel", "absolute"),
        ("anonymous", "pw", "/a", "reserved"),
    ],
)
def test_add_user_refuses_bad_input(
    tmp_path: Path, name: str, password: str, home: str, problem: str
) -> None:
    store = tmp_path / "users.toml"
    with pytest.raises(UserStoreError, match=problem):
        add_user(store, name, password, Path(home))
    assert not store.exists()


def test_set_password_replaces_the_old_one(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    add_user(store, "alice", "old", Path("/a"), may_write=False)
    set_password(store, "alice", "new")
    alice = load_users(store)["alice"]
    assert verify_password("new", alice.password_hash)
    assert not verify_password("old", alice.password_hash)
    assert alice.may_write is False


def test_delete_and_disable_change_only_their_user(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice"), "bob": record("bob"), "carol": record("carol")})
    delete_user(store, "bob")
    set_enabled(store, "carol", False)
    users = load_users(store)
    assert sorted(users) == ["alice", "carol"]
    assert users["alice"].enabled
    assert not users["carol"].enabled
    set_enabled(store, "carol", True)
    assert load_users(store)["carol"].enabled


@pytest.mark.parametrize(
    "change",
    [
        lambda store: set_password(store, "ghost", "pw"),
        lambda store: delete_user(store, "ghost"),
        lambda store: set_enabled(store, "ghost", False),
    ],
)
def test_changing_an_unknown_user_is_an_error(
    tmp_path: Path, change: Callable[[Path], None]
) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice")})
    with pytest.raises(UserStoreError, match="no user 'ghost'"):
        change(store)


def test_concurrent_adds_lose_no_user(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            add_user(store, f"user{i}", f"pw{i}", Path(f"/srv/ftp/user{i}"))
        except BaseException as exc:  # collected, so a failing thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(load_users(store)) == sorted(f"user{i}" for i in range(8))
