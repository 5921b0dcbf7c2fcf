"""Tests for ftpsup.supervisor.spawn: sockets, child command line and environment, accounts."""

from __future__ import annotations

import os
import pwd
import socket
import sys
from pathlib import Path

import pytest

from ftpsup import listeners
from ftpsup.config import InstanceConfig
from ftpsup.supervisor import spawn


def config(tmp_path: Path, **values: object) -> InstanceConfig:
    settings: dict[str, object] = {
        "name": "ipv4",
        "source": tmp_path / "ipv4.toml",
        "config_dir": tmp_path,
        "state_dir": tmp_path / "run",
        "log_dir": tmp_path / "log",
        "user_db_file": tmp_path / "users.toml",
        **values,
    }
    return InstanceConfig(**settings)  # type: ignore[arg-type]


def test_ipv6_listener_is_ipv6_only_so_ipv4_can_share_the_port() -> None:
    six = listeners.bind_listener("::1", 0)
    try:
        port = six.getsockname()[1]
        assert six.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        four = listeners.bind_listener("127.0.0.1", port)
        four.close()
    finally:
        six.close()


def test_a_taken_port_names_the_address() -> None:
    first = listeners.bind_listener("127.0.0.1", 0)
    port = first.getsockname()[1]
    try:
        with pytest.raises(
            listeners.ListenError, match=f"127.0.0.1:{port}: address already in use"
        ):
            listeners.bind_listener("127.0.0.1", port)
    finally:
        first.close()


def test_child_runs_serve_on_the_inherited_descriptors(tmp_path: Path) -> None:
    argv = spawn.child_argv(config(tmp_path), 7, 9)
    assert argv == [
        sys.executable,
        "-m",
        "ftpsup",
        "serve",
        str(tmp_path / "ipv4.toml"),
        "--listen-fd",
        "7",
        "--status-fd",
        "9",
    ]


def test_child_environment_drops_what_belongs_to_the_supervisor() -> None:
    env = spawn.child_env(
        {"PATH": "/bin", "LISTEN_FDS": "2", "LISTEN_PID": "1", "NOTIFY_SOCKET": "/run/x"}
    )
    assert env == {"PATH": "/bin", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize(
    ("code", "output", "reason"),
    [
        (0, ["bye"], "exit status 0"),
        (2, ["ftpsup: a.toml: bad", ""], "exit status 2: ftpsup: a.toml: bad"),
        (-9, [], "killed by SIGKILL"),
        (None, [], "ended"),
    ],
)
def test_exit_reason_says_how_and_quotes_the_last_line(
    code: int | None, output: list[str], reason: str
) -> None:
    assert spawn.exit_reason(code, output) == reason


def test_without_nopriv_user_the_instance_keeps_the_supervisors_account(tmp_path: Path) -> None:
    assert spawn.instance_account(config(tmp_path)) is None


def test_prepare_paths_creates_the_lease_and_log_directories(tmp_path: Path) -> None:
    c = config(tmp_path, xferlog_enable=True)
    assert spawn.prepare_paths(c, None) == []
    assert (tmp_path / "run" / "ports").is_dir()
    assert (tmp_path / "log" / "ipv4").is_dir()


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another account needs root")
def test_prepare_paths_hands_lease_and_log_files_to_nopriv_user(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    account = spawn.Account("nobody", nobody.pw_uid, nobody.pw_gid)
    c = config(tmp_path, nopriv_user="nobody")
    (tmp_path / "run" / "ports").mkdir(parents=True)
    (tmp_path / "run" / "ports" / "40000.lock").write_text("")
    (tmp_path / "log" / "ipv4").mkdir(parents=True)
    (tmp_path / "log" / "ipv4" / "ftpsup.log").write_text("old\n")
    users = tmp_path / "users.toml"
    users.write_text("")
    users.chmod(0o600)
    problems = spawn.prepare_paths(c, account)
    owned = [
        tmp_path / "run" / "ports",
        tmp_path / "run" / "ports" / "40000.lock",
        tmp_path / "log" / "ipv4",
        tmp_path / "log" / "ipv4" / "ftpsup.log",
    ]
    assert [p.stat().st_uid for p in owned] == [nobody.pw_uid] * 4
    assert any(
        p.startswith(f"user_db_file: {users} is not readable by nopriv_user nobody")
        for p in problems
    )
    os.chown(users, nobody.pw_uid, nobody.pw_gid)
    assert not any(p.startswith("user_db_file") for p in spawn.prepare_paths(c, account))
