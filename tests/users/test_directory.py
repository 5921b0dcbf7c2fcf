"""Tests for UserDirectory: a running server sees store changes without a restart, keeps the
last good copy of a damaged store, logs each change once, and authenticates.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ftpsup.errors import UserStoreError
from ftpsup.users.directory import UserDirectory
from ftpsup.users.store import (
    add_user,
    delete_user,
    load_users,
    save_users,
)
from tests.users.store_helpers import (
    _store_log_reaches_caplog,  # noqa: F401 (autouse)
    record,
)

# --- UserDirectory -------------------------------------------------------------------------


def test_directory_sees_an_added_user_without_restart(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    directory = UserDirectory(store)
    assert directory.lookup("alice") is None
    save_users(store, {"alice": record("alice")})
    assert directory.lookup("alice") == load_users(store)["alice"]
    add_user(store, "bob", "pw", Path("/srv/ftp/bob"))
    bob = directory.lookup("bob")
    assert bob is not None
    assert bob.home == Path("/srv/ftp/bob")


def test_directory_keeps_last_good_copy_of_a_corrupt_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice")})
    directory = UserDirectory(store)
    assert directory.lookup("alice") is not None
    store.write_text("[users.alice\nbroken")
    with caplog.at_level(logging.WARNING, logger="ftpsup.users"):
        assert directory.lookup("alice") is not None
        assert directory.lookup("alice") is not None
    warnings = [r for r in caplog.records if r.name == "ftpsup.users"]
    assert len(warnings) == 1
    assert "not valid TOML" in warnings[0].getMessage()
    save_users(store, {"bob": record("bob")})
    assert directory.lookup("alice") is None
    assert directory.lookup("bob") is not None


def store_messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "ftpsup.users" and r.levelno == level
    ]


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_directory_keeps_the_last_good_copy_of_an_emptied_or_deleted_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice")})
    directory = UserDirectory(store)
    assert directory.authenticate("alice", "pw-alice") is not None
    with caplog.at_level(logging.WARNING, logger="ftpsup.users"):
        if damage == "emptied":
            store.write_bytes(b"")
        else:
            store.unlink()
        for _ in range(3):
            assert directory.authenticate("alice", "pw-alice") is not None
        errors = store_messages(caplog, logging.ERROR)
        # Once per change, not per login; it names the file and what is being done.
        assert len(errors) == 1, errors
        assert str(store) in errors[0]
        assert "keeping the last good copy (1 users)" in errors[0]

        save_users(store, {"bob": record("bob")})
        assert directory.lookup("alice") is None
        assert directory.authenticate("bob", "pw-bob") is not None
    assert len(store_messages(caplog, logging.ERROR)) == 1
    assert any("usable again" in m for m in store_messages(caplog, logging.WARNING))


def test_every_change_of_a_damaged_store_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice")})
    directory = UserDirectory(store)
    assert directory.lookup("alice") is not None
    with caplog.at_level(logging.WARNING, logger="ftpsup.users"):
        store.write_bytes(b"")
        assert directory.lookup("alice") is not None
        store.unlink()
        assert directory.lookup("alice") is not None
        assert directory.lookup("alice") is not None
    errors = store_messages(caplog, logging.ERROR)
    assert len(errors) == 2, errors
    assert "no [users] table" in errors[0]
    assert "is gone" in errors[1]


def test_deleting_the_last_user_empties_the_store_on_purpose(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice")})
    directory = UserDirectory(store)
    assert directory.lookup("alice") is not None

    delete_user(store, "alice")

    assert load_users(store) == {}
    with caplog.at_level(logging.WARNING, logger="ftpsup.users"):
        assert directory.lookup("alice") is None
    assert store_messages(caplog, logging.ERROR) == []
    assert store_messages(caplog, logging.WARNING) == []


def test_a_store_that_never_existed_is_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = UserDirectory(tmp_path / "users.toml")
    with caplog.at_level(logging.WARNING, logger="ftpsup.users"):
        assert directory.lookup("alice") is None
        assert directory.lookup("alice") is None
    warnings = store_messages(caplog, logging.WARNING)
    assert len(warnings) == 1
    assert "does not exist; no local user can log in" in warnings[0]
    assert store_messages(caplog, logging.ERROR) == []


def test_user_commands_refuse_to_build_on_an_emptied_store(tmp_path: Path) -> None:
    # `ftpsup user add` on a truncated store would otherwise save a store of one user.
    store = tmp_path / "users.toml"
    store.write_bytes(b"")
    with pytest.raises(UserStoreError, match=r"no \[users\] table"):
        add_user(store, "bob", "pw", Path("/srv/ftp/bob"))
    assert store.read_bytes() == b""


def test_authenticate_needs_an_enabled_user_and_the_right_password(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice"), "bob": record("bob", enabled=False)})
    directory = UserDirectory(store)
    alice = directory.authenticate("alice", "pw-alice")
    assert alice is not None
    assert alice.name == "alice"
    assert directory.authenticate("alice", "wrong") is None
    assert directory.authenticate("bob", "pw-bob") is None
    assert directory.authenticate("nobody", "pw-alice") is None


def test_check_cached_proves_only_a_password_already_verified(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice"), "bob": record("bob", enabled=False)})
    directory = UserDirectory(store)
    assert directory.check_cached("alice", "pw-alice") is None
    assert directory.authenticate("alice", "pw-alice") is not None
    cached = directory.check_cached("alice", "pw-alice")
    assert cached is not None
    assert cached.name == "alice"
    assert directory.check_cached("alice", "wrong") is None
    assert directory.check_cached("bob", "pw-bob") is None
    assert directory.check_cached("nobody", "pw-alice") is None


def test_check_cached_forgets_a_login_when_the_store_changes(tmp_path: Path) -> None:
    store = tmp_path / "users.toml"
    save_users(store, {"alice": record("alice")})
    directory = UserDirectory(store)
    assert directory.authenticate("alice", "pw-alice") is not None
    save_users(store, {"alice": record("alice", enabled=False)})
    assert directory.check_cached("alice", "pw-alice") is None
