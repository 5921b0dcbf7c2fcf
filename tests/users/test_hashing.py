"""Tests for the stored passwords (ftpsup.users.hashing) and user names: scrypt round trips,
costs, malformed or hostile stored hashes, and which names are valid.
"""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpsup.errors import UserStoreError
from ftpsup.users.hashing import hash_password, verify_password
from ftpsup.users.store import (
    check_user_name,
)
from tests.users.store_helpers import (
    DIGEST,
    FAST,
    SALT,
    _store_log_reaches_caplog,  # noqa: F401 (autouse)
)

# --- hashing -------------------------------------------------------------------------------


def test_hash_round_trip_accepts_the_right_password() -> None:
    stored = hash_password("s3cret", ln=FAST)
    assert stored.startswith(f"$scrypt$ln={FAST},r=8,p=1$")
    assert verify_password("s3cret", stored)


def test_wrong_password_is_refused() -> None:
    stored = hash_password("s3cret", ln=FAST)
    assert not verify_password("s3cret ", stored)
    assert not verify_password("", stored)


def test_default_cost_is_ln14_r8_p1() -> None:
    stored = hash_password("x")
    assert stored.startswith("$scrypt$ln=14,r=8,p=1$")
    assert verify_password("x", stored)


def test_same_password_hashes_differently_each_time() -> None:
    assert hash_password("same", ln=FAST) != hash_password("same", ln=FAST)


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_text_password_round_trips(password: str) -> None:
    stored = hash_password(password, ln=1)
    assert verify_password(password, stored)
    assert not verify_password(password + "x", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "s3cret",
        "$scrypt$",
        "$2b$12$abcdefghijklmnopqrstuuKzvZ6bPIxAs5QXQpI2T8g6ZOpRqiy",
        f"$scrypt$ln=4,r=8,p=1${SALT}",
        f"$scrypt$ln=4,r=8,p=1${SALT}${DIGEST}$extra",
        f"$scrypt$ln=4,r=8,p=1$!!!!${DIGEST}",
        f"$scrypt$ln=4,r=8,p=1${SALT}$not*base64",
        f"$scrypt$ln=4,p=1,r=8${SALT}${DIGEST}",
        f"$scrypt$ln= 4,r=8,p=1${SALT}${DIGEST}",
        f"$scrypt$ln=+4,r=8,p=1${SALT}${DIGEST}",
        f"$scrypt$ln=\u0664,r=8,p=1${SALT}${DIGEST}",  # an Arabic-Indic digit four
        f"$scrypt$ln=4,r=8,p=1$c2FsdA${DIGEST}",  # 4-byte salt
        f"$scrypt$ln=4,r=8,p=1${SALT}$c2hvcnQ",  # 5-byte hash
        f" $scrypt$ln=4,r=8,p=1${SALT}${DIGEST}",
    ],
)
def test_malformed_stored_hash_is_refused_without_raising(stored: str) -> None:
    assert verify_password("s3cret", stored) is False


@pytest.mark.parametrize(
    "params",
    [
        "ln=0,r=8,p=1",
        "ln=21,r=8,p=1",
        "ln=99,r=8,p=1",
        "ln=20,r=8,p=1",  # 1 GiB of memory
        "ln=4,r=0,p=1",
        "ln=4,r=8,p=0",
        "ln=4,r=65,p=1",
        "ln=4,r=8,p=9",
        "ln=4,r=9999,p=9999",
    ],
)
def test_hostile_cost_parameters_are_refused(params: str) -> None:
    assert verify_password("s3cret", f"$scrypt${params}${SALT}${DIGEST}") is False


def test_huge_salt_or_hash_is_refused() -> None:
    huge = "QUFB" * 2000
    assert not verify_password("s3cret", f"$scrypt$ln=4,r=8,p=1${huge}${DIGEST}")
    assert not verify_password("s3cret", f"$scrypt$ln=4,r=8,p=1${SALT}${huge}")


def test_unencodable_password_is_refused_without_raising() -> None:
    stored = hash_password("s3cret", ln=FAST)
    assert verify_password("\ud800", stored) is False


def test_hash_password_refuses_an_absurd_cost() -> None:
    with pytest.raises(ValueError, match="ln"):
        hash_password("x", ln=25)


def test_verification_goes_through_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    real = hmac.compare_digest
    calls: list[bool] = []

    def recording(a: bytes, b: bytes) -> bool:
        result = real(a, b)
        calls.append(result)
        return result

    monkeypatch.setattr(hmac, "compare_digest", recording)
    stored = hash_password("s3cret", ln=FAST)
    assert verify_password("s3cret", stored)
    assert not verify_password("other", stored)
    assert calls == [True, False]


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "a", "Bob_2", "j.doe", "web-upload", "x" * 32, "_svc"])
def test_valid_user_names_are_accepted(name: str) -> None:
    check_user_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "x" * 33, "-rf", ".hidden", "a b", "a/b", "é", "a\nb", "a:b", "anonymous", "FTP", "ftp"],
)
def test_invalid_or_reserved_user_names_are_refused(name: str) -> None:
    with pytest.raises(UserStoreError, match="user name"):
        check_user_name(name)
