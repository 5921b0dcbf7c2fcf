"""Tests for the shared user store (ftpsup.users) and the `ftpsup user` commands."""

from __future__ import annotations

import argparse
import hmac
import io
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpsup.cli import user as user_commands
from ftpsup.errors import UserStoreError
from ftpsup.users.directory import UserDirectory
from ftpsup.users.hashing import hash_password, verify_password
from ftpsup.users.store import (
    UserRecord,
    add_user,
    check_user_name,
    delete_user,
    load_users,
    save_users,
    set_enabled,
    set_password,
)

FAST = 4  # scrypt ln for tests where the default cost would only slow them down
SALT = "c2FsdHNhbHRzYWx0c2FsdA"  # 16 bytes
DIGEST = "ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0MTI"  # 32 bytes


@pytest.fixture(autouse=True)
def _store_log_reaches_caplog(monkeypatch: pytest.MonkeyPatch) -> None:
    # A server started in this process (make_context) sends "ftpsup.users" to the instance's
    # log only; these tests read the store's messages through caplog, on the root logger.
    log = logging.getLogger("ftpsup.users")
    monkeypatch.setattr(log, "propagate", True)
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "disabled", False)


def record(name: str, home: str = "/srv/ftp/x", **kwargs: bool) -> UserRecord:
    return UserRecord(name, hash_password("pw-" + name, ln=FAST), Path(home), **kwargs)


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
