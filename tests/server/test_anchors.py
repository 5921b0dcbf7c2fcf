"""Directories opened before the drop: files behind them stay reachable, by fd, not by path."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.config.schema import InstanceConfig
from ftpsup.server import anchors
from ftpsup.users.accounts import Account
from ftpsup.users.directory import UserDirectory
from ftpsup.users.hashing import hash_password
from ftpsup.users.store import UserRecord, save_users

FAST = 4


def record(name: str, password: str) -> UserRecord:
    return UserRecord(name, hash_password(password, ln=FAST), Path("/srv/ftp") / name)


@pytest.fixture
def dir_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "etc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    yield fd
    os.close(fd)


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    return tmp_path / "etc"


def test_a_user_directory_on_a_dir_fd_reads_and_rereads_the_store_from_that_directory(
    tmp_path: Path, etc: Path, dir_fd: int
) -> None:
    save_users(etc / "users.toml", {"alice": record("alice", "one")})
    users = UserDirectory(etc / "users.toml", dir_fd=dir_fd)
    # The path no longer leads there: only the open directory does, as /root does not for
    # the account after the drop.
    moved = tmp_path / "moved"
    etc.rename(moved)
    assert users.authenticate("alice", "one") is not None
    # An atomic replacement (a new inode under the same name) is seen at the next login.
    save_users(moved / "users.toml", {"alice": record("alice", "two")})
    assert users.authenticate("alice", "one") is None
    assert users.authenticate("alice", "two") is not None


def _config(etc: Path) -> InstanceConfig:
    return InstanceConfig(
        name="t",
        source=etc / "t.toml",
        config_dir=etc,
        state_dir=etc.parent / "run",
        log_dir=etc.parent / "log",
        user_db_file=etc / "users.toml",
        ssl_enable=True,
        rsa_cert_file=etc / "tls" / "cert.pem",
        rsa_private_key_file=etc / "tls" / "key.pem",
    )


def _nobody() -> Account:
    entry = pwd.getpwnam("nobody")
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


@pytest.mark.skipif(os.geteuid() == pwd.getpwnam("nobody").pw_uid, reason="run as nobody")
def test_anchor_opens_what_lies_behind_a_closed_directory_and_leaves_the_rest() -> None:
    # Not under tmp_path: pytest's base directory is closed to other accounts.
    tmp_path = Path(tempfile.mkdtemp(prefix="ftpsup-anchor-"))
    try:
        _check_anchor(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _check_anchor(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "tls").mkdir()
    (etc / "tls" / "cert.pem").write_text("CERT\n")
    (etc / "users.toml").write_text("[users]\n")
    for directory in (tmp_path / "run" / "ports", tmp_path / "log" / "t"):
        directory.mkdir(parents=True)
    tmp_path.chmod(0o700)  # the closed parent, as /root is
    for path in (etc, etc / "tls", tmp_path / "run", tmp_path / "log" / "t"):
        path.chmod(0o755)
    config = _config(etc)
    anchored = anchors.anchor(config, _nobody())
    assert anchored.store_dir_fd is not None
    assert os.path.samestat(os.stat(anchored.store_dir_fd), os.stat(etc))
    got = anchored.config
    assert str(got.rsa_cert_file).startswith("/proc/self/fd/")
    assert got.rsa_cert_file.read_text() == "CERT\n"
    assert os.path.samefile(got.state_dir / "ports", tmp_path / "run" / "ports")
    assert os.path.samefile(got.vsftpd_log_file.parent, tmp_path / "log" / "t")
    assert got.vsftpd_log_file.name == config.vsftpd_log_file.name
    # Open to the account by name: nothing is anchored, the paths stay as written.
    tmp_path.chmod(0o755)
    assert anchors.anchor(config, _nobody()) == anchors.Anchored(config, None)
    for fd in {anchored.store_dir_fd, int(got.rsa_cert_file.parts[4])}:
        os.close(fd)
