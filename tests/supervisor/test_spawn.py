"""Tests for ftpsup.supervisor.spawn and ftpsup.users.accounts: sockets, child command line and
environment, accounts."""

from __future__ import annotations

import math
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from ftpsup import listeners
from ftpsup.supervisor import spawn
from ftpsup.users import accounts
from tests.configs import minimal_config

config = minimal_config


def test_ipv6_listener_is_ipv6_only_so_ipv4_can_share_the_port() -> None:
    # The kernel picks the IPv6 port; another test (or a client socket) may hold that number on
    # 127.0.0.1 already, which says nothing about the IPv6 socket. So try a few fresh ports:
    # without IPV6_V6ONLY every one of them would be refused.
    refused: list[str] = []
    for _ in range(10):
        six = listeners.bind_listener("::1", 0)
        try:
            assert six.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
            try:
                four = listeners.bind_listener("127.0.0.1", six.getsockname()[1])
            except listeners.ListenError as exc:
                refused.append(str(exc))
                continue
            four.close()
            return
        finally:
            six.close()
    pytest.fail(f"IPv4 never shared the IPv6 listener's port: {refused}")


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
        "-I",
        "-u",
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
    assert env == {"PATH": "/bin"}


def test_child_environment_carries_no_python_variable_of_the_admin() -> None:
    env = spawn.child_env(
        {
            "PATH": "/bin",
            "PYTHONPATH": "/home/admin/src",
            "PYTHONHOME": "/tmp/x",
            "PYTHONSTARTUP": "/tmp/evil.py",
            "PYTHONINSPECT": "1",
            "LANG": "C.UTF-8",
        }
    )
    assert env == {"PATH": "/bin", "LANG": "C.UTF-8"}


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


def test_run_as_root_keeps_the_supervisors_account(tmp_path: Path) -> None:
    assert accounts.instance_account(config(tmp_path, run_as_root=True)) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="only root drops to another account")
def test_root_drops_to_nopriv_user_by_default_or_says_how_to_create_it(tmp_path: Path) -> None:
    assert config(tmp_path).nopriv_user == "ftpsup"
    with pytest.raises(accounts.AccountError, match="no account .no-such-acct-q. on this host"):
        accounts.instance_account(config(tmp_path, nopriv_user="no-such-acct-q"))
    with pytest.raises(accounts.AccountError, match="set run_as_root = true") as raised:
        accounts.instance_account(config(tmp_path, nopriv_user="root"))
    assert raised.value.problem.keys == ("nopriv_user",)
    assert str(raised.value).startswith("nopriv_user: root has uid 0; ")
    nobody = pwd.getpwnam("nobody")
    assert accounts.instance_account(config(tmp_path, nopriv_user="nobody")) == accounts.Account(
        "nobody", nobody.pw_uid, nobody.pw_gid
    )


def test_prepare_paths_creates_the_lease_and_log_directories(tmp_path: Path) -> None:
    c = config(tmp_path, xferlog_enable=True)
    assert accounts.prepare_paths(c, None) == []
    assert (tmp_path / "run" / "ports").is_dir()
    assert (tmp_path / "log" / "ipv4").is_dir()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory other accounts can pass (pytest's own base is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ftpsup-spawn-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another account needs root")
def test_prepare_paths_hands_lease_and_log_files_to_nopriv_user(shared_tmp: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    account = accounts.Account("nobody", nobody.pw_uid, nobody.pw_gid)
    c = config(shared_tmp, nopriv_user="nobody")
    (shared_tmp / "run" / "ports").mkdir(parents=True)
    (shared_tmp / "run" / "ports" / "40000.lock").write_text("")
    (shared_tmp / "log" / "ipv4").mkdir(parents=True)
    (shared_tmp / "log" / "ipv4" / "ftpsup.log").write_text("old\n")
    users = shared_tmp / "users.toml"
    users.write_text("")
    users.chmod(0o600)
    problems = accounts.prepare_paths(c, account)
    owned = [
        shared_tmp / "run" / "ports",
        shared_tmp / "run" / "ports" / "40000.lock",
        shared_tmp / "log" / "ipv4",
        shared_tmp / "log" / "ipv4" / "ftpsup.log",
    ]
    assert [p.stat().st_uid for p in owned] == [nobody.pw_uid] * 4
    assert [str(p) for p in problems if p.keys == ("user_db_file",)] == [
        f"user_db_file: nopriv_user nobody cannot read {users} (no access to {users}): "
        "run `ftpsup setup`, or see docs/supervisor.md"
    ]
    # What `ftpsup setup` does: the account's group may read it, nobody else.
    assert accounts.grant_read(users, account)
    assert (users.stat().st_gid, users.stat().st_mode & 0o777) == (nobody.pw_gid, 0o640)
    assert accounts.prepare_paths(c, account) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another account needs root")
def test_prepare_paths_passes_closed_parents_but_not_a_closed_config_directory(
    tmp_path: Path,
) -> None:
    # tmp_path (0700) lies under pytest's root-only (0700) base directory, as a checkout in
    # /root does. The instance opens each directory it uses before the drop, so the closed
    # parents do not count, but the store's own directory must let the account search it.
    assert tmp_path.stat().st_mode & 0o777 == 0o700
    nobody = pwd.getpwnam("nobody")
    account = accounts.Account("nobody", nobody.pw_uid, nobody.pw_gid)
    c = config(tmp_path, nopriv_user="nobody")
    store = tmp_path / "users.toml"
    assert [str(p) for p in accounts.prepare_paths(c, account)] == [
        f"user_db_file: nopriv_user nobody cannot read {store} (no access to {tmp_path}): "
        "run `ftpsup setup`, or see docs/supervisor.md"
    ]
    # What `ftpsup setup` does: the account's group may search that directory, not list it.
    assert accounts.grant_search(tmp_path, account)
    assert (tmp_path.stat().st_gid, tmp_path.stat().st_mode & 0o777) == (nobody.pw_gid, 0o710)
    assert not accounts.grant_search(tmp_path, account)
    assert accounts.prepare_paths(c, account) == []


def test_instance_output_without_line_ends_is_cut_into_bounded_lines() -> None:
    # An instance runs as nopriv_user; the supervisor (root) reads its output. A process that
    # writes without ever ending a line must not make the supervisor buffer it all.
    total = 8 * spawn.MAX_MESSAGE
    script = f"import sys; sys.stdout.write('x' * {total}); sys.stdout.write('\\nend\\n')"

    async def main() -> list[str]:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-I", "-c", script], stdout=subprocess.PIPE
        )
        a, b = socket.socketpair()
        b.close()
        child = spawn.Child(process, trio.SocketStream(trio.socket.from_stdlib_socket(a)))
        send, receive = trio.open_memory_channel[str](math.inf)
        with trio.fail_after(60):
            async with send:
                await child.serve_output(send)
            await process.wait()
        await child.channel.aclose()
        return [line async for line in receive]

    lines = trio.run(main)
    assert max(len(line) for line in lines) <= spawn.MAX_MESSAGE
    assert sum(len(line) for line in lines[:-1]) == total
    assert lines[-1] == "end"
