"""State that vanishes under a running server: the user store and the state directory.

A user store that is emptied or deleted must not lock everyone out in silence: the instance
keeps its last good copy, logs one ERROR, and takes a valid store as soon as there is one.
A removed state directory must not break passive mode, and `ftpsup stop all` must either
stop every process or fail: it never reports a stop that did not happen.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.raw_ftp import RawControl
from tests.integration.servers import (
    PASSWORD,
    USER,
    Server,
    add_user,
    login_reply,
    wait_for_log,
    wait_until,
)
from tests.integration.supervisors import (
    HOSTS,
    Sup,
    alive,
    make_supervisor,
    own_supervisor,
    raw_session,
)

TIMEOUT = 10
ServerFactory = Callable[..., Server]


def user_cli(config_dir: Path, *args: str) -> None:
    command = [sys.executable, "-m", "ftpsup", "--config-dir", str(config_dir), "user", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_an_emptied_or_deleted_user_store_keeps_the_last_good_copy_and_says_so(
    server_factory: ServerFactory, damage: str
) -> None:
    srv = server_factory("127.0.0.1")
    store = srv.config_dir / "users.toml"
    assert login_reply(srv, USER, PASSWORD).startswith("230")

    if damage == "emptied":
        store.write_bytes(b"")
    else:
        store.unlink()
    replies = [login_reply(srv, USER, PASSWORD)[:3] for _ in range(3)]
    logs = wait_for_log(srv, "ERROR: ")

    assert replies == ["230"] * 3
    errors = [line for line in logs.splitlines() if "ERROR: " in line]
    assert len(errors) == 1, errors  # once per change, not once per login
    assert str(store) in errors[0]
    assert "keeping the last good copy (1 users)" in errors[0]

    # A valid store is taken at once: here one that has only bob.
    store.unlink(missing_ok=True)
    add_user(srv.config_dir, "bob", "bob's password", srv.home.parent / "bob")
    assert login_reply(srv, "bob", "bob's password").startswith("230")
    assert login_reply(srv, USER, PASSWORD).startswith("530")
    assert "usable again" in wait_for_log(srv, "usable again")
    assert srv.process.poll() is None


def test_deleting_the_last_user_locks_everyone_out_without_an_error(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1")
    assert login_reply(srv, USER, PASSWORD).startswith("230")

    user_cli(srv.config_dir, "del", USER)

    assert login_reply(srv, USER, PASSWORD).startswith("530")
    assert "ERROR: " not in srv.log_text()


# -- the state directory -------------------------------------------------------------------


@pytest.fixture
def running() -> Iterator[Sup]:
    """A supervisor of one's own with its ipv4 and ipv6 instances serving."""
    with own_supervisor() as s:
        result = s.ftpsup("start", "all")
        assert result.returncode == 0, result.stdout + result.stderr
        s.status()  # records the pids, for shutdown() to kill whatever stop all leaves
        yield s


def all_logs(s: Sup) -> str:
    return "".join(p.read_text(errors="replace") for p in (s.base / "log").rglob("*.log"))


def test_passive_mode_after_the_state_dir_is_removed_gets_a_port(running: Sup) -> None:
    shutil.rmtree(running.run_dir)

    replies = {}
    for name, host in HOSTS.items():
        with raw_session(host, running.port) as session:
            replies[name] = session.command("PASV" if name == "ipv4" else "EPSV").code
            assert session.command("NOOP").code == 200

    assert replies == {"ipv4": 227, "ipv6": 229}
    assert (running.run_dir / "ports").is_dir()
    assert "Traceback" not in all_logs(running)


def test_stop_all_after_the_state_dir_is_removed_stops_every_process(running: Sup) -> None:
    data = running.status()
    pids = [data["supervisor"]["pid"], *(e["pid"] for e in data["instances"])]
    shutil.rmtree(running.run_dir)

    result = running.ftpsup("stop", "all")

    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: not any(alive(pid) for pid in pids), "every process to end", timeout=30)
    assert running.ftpsup("status").returncode == 3


def test_the_supervisor_puts_back_its_control_socket_and_pid_file(running: Sup) -> None:
    pid = running.status()["supervisor"]["pid"]
    shutil.rmtree(running.run_dir)

    sock, pid_file = running.run_dir / "supervisor.sock", running.run_dir / "supervisor.pid"
    wait_until(
        lambda: sock.exists() and pid_file.exists(), "the run directory to return", timeout=15
    )

    assert pid_file.read_text().strip() == str(pid)
    assert running.status()["supervisor"]["pid"] == pid
    assert "recreated" in all_logs(running)


def test_stop_all_that_cannot_reach_a_live_supervisor_fails(tmp_path: Path) -> None:
    # A supervisor that holds its pid file but answers on no socket: stop cannot have happened.
    s = make_supervisor()
    try:
        s.run_dir.mkdir()
        with open(s.run_dir / "supervisor.pid", "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            held.write(f"{os.getpid()}\n")
            held.flush()
            result = s.ftpsup("stop", "all")
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"pid {os.getpid()}" in result.stderr
        assert "does not answer" in result.stderr
    finally:
        shutil.rmtree(s.base, ignore_errors=True)


def test_stop_all_with_nothing_running_is_still_success() -> None:
    s = make_supervisor()
    try:
        result = s.ftpsup("stop", "all")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "not running" in result.stderr
    finally:
        shutil.rmtree(s.base, ignore_errors=True)


def test_passive_mode_without_a_usable_lease_directory_is_a_clean_425(
    server_factory: ServerFactory,
) -> None:
    srv = server_factory("127.0.0.1")
    state_dir = srv.config_dir.parent / "run"
    with RawControl(srv.host, srv.port, timeout=TIMEOUT) as session:
        assert session.reply().code == 220
        assert session.login().code == 230
        assert session.command("PASV").code == 227
        shutil.rmtree(state_dir)
        state_dir.write_text("a file where the state directory was\n")

        refused = session.command("PASV")
        alive_after = session.command("NOOP").code

        state_dir.unlink()
        again = session.command("PASV").code

    assert refused.code == 425, refused.text
    assert alive_after == 200
    assert again == 227
    logs = wait_for_log(srv, "cannot open a passive port for 127.0.0.1")
    assert "WARNING: cannot open a passive port for 127.0.0.1" in logs
    assert "Traceback" not in logs


def test_status_answers_with_a_fifo_planted_in_the_lease_directory(running: Sup) -> None:
    # The lease directory is the instances' (nopriv_user's); the supervisor reads it for
    # status. What an instance leaves there must not hang the supervisor's probe.
    fifo = running.run_dir / "ports" / f"{running.pasv[0]}.lock"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o600)
    try:
        try:
            result = running.ftpsup("status", "--json")
        except subprocess.TimeoutExpired:
            result = None
        second = running.ftpsup("status", "--json") if result is not None else None
    finally:
        # Frees a probe stuck in open() (a writer appears), so the supervisor can stop.
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        fifo.unlink(missing_ok=True)

    assert result is not None, "ftpsup status did not return"
    assert result.returncode == 0, result.stdout + result.stderr
    assert [i["state"] for i in json.loads(result.stdout)["instances"]] == ["RUNNING"] * 2
    assert second is not None
    assert second.returncode == 0, second.stdout + second.stderr
