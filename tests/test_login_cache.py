"""LoginCache and its use by UserDirectory: successes skip scrypt, changes drop the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftpsup import users
from ftpsup.login_cache import LoginCache


def test_remembered_password_is_recognised_and_others_are_not() -> None:
    cache = LoginCache()
    cache.remember("alice", "secret", "$hash1")

    assert cache.check("alice", "secret", "$hash1")
    assert not cache.check("alice", "Secret", "$hash1")
    assert not cache.check("bob", "secret", "$hash1")


def test_entry_is_void_once_the_stored_hash_changes() -> None:
    cache = LoginCache()
    cache.remember("alice", "secret", "$hash1")

    assert not cache.check("alice", "secret", "$hash2")


def test_cache_stays_bounded() -> None:
    cache = LoginCache(max_entries=3)
    for i in range(10):
        cache.remember(f"user{i}", "pw", "$h")

    assert len(cache._entries) <= 3
    assert cache.check("user9", "pw", "$h")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    users.add_user(path, "alice", "secret", tmp_path)
    return path


def test_second_login_skips_scrypt(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = users.UserDirectory(store)
    assert directory.authenticate("alice", "secret") is not None
    calls: list[str] = []
    real = users.verify_password
    monkeypatch.setattr(users, "verify_password", lambda p, h: calls.append(p) or real(p, h))

    assert directory.authenticate("alice", "secret") is not None
    assert calls == []
    assert directory.authenticate("alice", "wrong") is None
    assert calls == ["wrong"]


def test_password_change_is_seen_at_once(store: Path) -> None:
    directory = users.UserDirectory(store)
    assert directory.authenticate("alice", "secret") is not None

    users.set_password(store, "alice", "new secret")

    assert directory.authenticate("alice", "secret") is None
    assert directory.authenticate("alice", "new secret") is not None


def test_disabled_user_is_refused_even_when_cached(store: Path) -> None:
    directory = users.UserDirectory(store)
    assert directory.authenticate("alice", "secret") is not None

    users.set_enabled(store, "alice", False)

    assert directory.authenticate("alice", "secret") is None
