"""LoginCache and its use by UserDirectory: successes skip scrypt, changes drop the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftpsup.users import directory as users_directory
from ftpsup.users import hashing
from ftpsup.users import store as users_store
from ftpsup.users.login_cache import LoginCache


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
    users_store.add_user(path, "alice", "secret", tmp_path)
    return path


def test_second_login_skips_scrypt(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = users_directory.UserDirectory(store)
    assert directory.authenticate("alice", "secret") is not None
    calls: list[str] = []
    real = hashing.verify_password

    def counting_verify(password: str, stored: str) -> bool:
        calls.append(password)
        return real(password, stored)

    monkeypatch.setattr(users_directory, "verify_password", counting_verify)

    assert directory.authenticate("alice", "secret") is not None
    assert calls == []
    assert directory.authenticate("alice", "wrong") is None
    assert calls == ["wrong"]


def test_password_change_is_seen_at_once(store: Path) -> None:
    directory = users_directory.UserDirectory(store)
    assert directory.authenticate("alice", "secret") is not None

    users_store.set_password(store, "alice", "new secret")

    assert directory.authenticate("alice", "secret") is None
    assert directory.authenticate("alice", "new secret") is not None


def test_disabled_user_is_refused_even_when_cached(store: Path) -> None:
    directory = users_directory.UserDirectory(store)
    assert directory.authenticate("alice", "secret") is not None

    users_store.set_enabled(store, "alice", False)

    assert directory.authenticate("alice", "secret") is None


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scrypt run ("scrypt") and login-cache HMAC ("hmac") from now on, in order."""
    done: list[str] = []
    real_scrypt, real_digest = hashing._scrypt, LoginCache._digest

    def scrypt(password: str, ln: int, r: int, p: int, salt: bytes, dklen: int) -> bytes:
        done.append("scrypt")
        return real_scrypt(password, ln, r, p, salt, dklen)

    def digest(self: LoginCache, name: str, password: str) -> bytes:
        done.append("hmac")
        return real_digest(self, name, password)

    monkeypatch.setattr(hashing, "_scrypt", scrypt)
    monkeypatch.setattr(LoginCache, "_digest", digest)
    return done


def login_work(
    directory: users_directory.UserDirectory, name: str, password: str, work: list[str]
) -> list[str]:
    """The work of one refused login as the server does it: the cache first, then scrypt."""
    work.clear()
    assert directory.check_cached(name, password) is None
    assert directory.authenticate(name, password) is None
    return list(work)


def test_a_disabled_account_costs_what_a_wrong_password_costs(store: Path, work: list[str]) -> None:
    users_store.add_user(store, "bob", "bob's secret", store.parent)
    directory = users_directory.UserDirectory(store)
    assert directory.authenticate("alice", "secret") is not None
    users_store.set_enabled(store, "alice", False)

    # Repeated: a disabled account's right password, once verified, must not be remembered.
    right = [login_work(directory, "alice", "secret", work) for _ in range(3)]
    wrong = [login_work(directory, "alice", "wrong", work) for _ in range(3)]
    enabled_wrong = [login_work(directory, "bob", "wrong", work) for _ in range(3)]

    one_login = ["hmac", "hmac", "scrypt"]
    assert right == wrong == enabled_wrong == [one_login] * 3


def test_a_miss_computes_the_hmac_like_a_mismatch(work: list[str]) -> None:
    cache = LoginCache()
    cache.remember("alice", "secret", "$hash1")
    work.clear()

    assert not cache.check("bob", "secret", "$hash1")
    assert not cache.check("alice", "secret", "$hash2")
    assert not cache.check("alice", "wrong", "$hash1")
    assert work == ["hmac"] * 3


def test_a_disabled_account_enabled_again_logs_in_and_is_cached_then(
    store: Path, work: list[str]
) -> None:
    users_store.set_enabled(store, "alice", False)
    directory = users_directory.UserDirectory(store)
    assert directory.authenticate("alice", "secret") is None
    users_store.set_enabled(store, "alice", True)

    assert directory.authenticate("alice", "secret") is not None
    work.clear()
    assert directory.check_cached("alice", "secret") is not None
    assert "scrypt" not in work
