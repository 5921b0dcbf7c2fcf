"""Tests for ftpsup.supervisor.rundir and the lease directory: a state_dir removed under us."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.ports import PortAllocator
from ftpsup.supervisor import ctl
from ftpsup.supervisor.rundir import AlreadyRunning, RunDir, pid_file_holder


@pytest.fixture
def claimed(tmp_path: Path) -> Iterator[RunDir]:
    run_dir = RunDir.claim(tmp_path / "run")
    try:
        yield run_dir
    finally:
        run_dir.release()


def test_a_second_claim_of_a_state_dir_is_refused(claimed: RunDir) -> None:
    with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
        RunDir.claim(claimed.state_dir)


def test_a_removed_state_dir_cannot_be_claimed_again_while_the_first_runs(
    claimed: RunDir,
) -> None:
    # The pid file is gone with the directory; the abstract socket still says "taken".
    shutil.rmtree(claimed.state_dir)
    with pytest.raises(AlreadyRunning, match="pid file was gone"):
        RunDir.claim(claimed.state_dir)


def test_repair_puts_back_the_pid_file_the_socket_and_the_lease_directory(
    claimed: RunDir,
) -> None:
    claimed.bind_control()
    lease_dir = claimed.state_dir / "ports"
    lease_dir.mkdir()
    assert claimed.repair([(lease_dir, None)]) == []
    shutil.rmtree(claimed.state_dir)

    done = claimed.repair([(lease_dir, None)])

    assert len(done) == 4, done
    assert all(line.startswith("recreated ") for line in done)
    assert ctl.pid_path(claimed.state_dir).read_text() == f"{os.getpid()}\n"
    assert pid_file_holder(claimed.state_dir) == os.getpid()
    assert ctl.is_running(ctl.socket_path(claimed.state_dir))
    assert lease_dir.is_dir()
    assert claimed.repair([(lease_dir, None)]) == []


def test_release_leaves_files_that_are_not_its_own(claimed: RunDir) -> None:
    claimed.bind_control()
    shutil.rmtree(claimed.state_dir)
    claimed.state_dir.mkdir()
    pid_file = ctl.pid_path(claimed.state_dir)
    pid_file.write_text("someone else's\n")

    claimed.release()
    claimed.pid_fd = os.open(os.devnull, os.O_RDONLY)  # for the fixture's release

    assert pid_file.read_text() == "someone else's\n"


def test_nobody_holds_a_pid_file_that_is_only_on_disk(tmp_path: Path) -> None:
    tmp_path.joinpath("supervisor.pid").write_text("12345\n")
    assert pid_file_holder(tmp_path) is None
    assert pid_file_holder(tmp_path / "absent") is None


SQUATTER = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind("\\0" + sys.argv[1])
sock.listen(4)
print("bound", flush=True)
while True:
    conn, _ = sock.accept()
    conn.sendall(b'{"ok": true, "messages": ["stopped (not really)"]}\\n')
    conn.close()
"""


# The account "nobody" may not be able to run this virtual environment's interpreter.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


@pytest.fixture
def squatter(tmp_path: Path) -> Iterator[Path]:
    """Another account listening on the abstract name of tmp_path/run."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a process as another account")
    state_dir = tmp_path / "run"
    process = subprocess.Popen(
        # argv cannot hold the leading NUL of an abstract name: the child adds it.
        [SYSTEM_PYTHON, "-c", SQUATTER, ctl.abstract_address(state_dir)[1:]],
        user="nobody",
        cwd="/",
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "bound\n"
        yield state_dir
    finally:
        process.kill()
        process.wait(timeout=10)


def test_an_abstract_name_held_by_another_account_is_no_claim(squatter: Path) -> None:
    run_dir = RunDir.claim(squatter)
    try:
        assert run_dir.abstract is None
        assert run_dir.refusal is not None
        assert "held by uid" in run_dir.refusal
    finally:
        run_dir.release()


def test_a_client_does_not_believe_another_account(squatter: Path) -> None:
    with pytest.raises(ctl.NotRunning, match="another account"):
        ctl.request(ctl.abstract_address(squatter), ctl.Request("shutdown"), timeout=5)


def test_a_lease_recreates_a_removed_lease_directory(tmp_path: Path) -> None:
    lease_dir = tmp_path / "run" / "ports"
    allocator = PortAllocator(lease_dir, 40000, 40001, owner="ipv4")
    shutil.rmtree(tmp_path / "run")

    lease = allocator.lease()

    assert lease is not None
    assert lease_dir.is_dir()
    assert (lease_dir / f"{lease.port}.lock").exists()
    lease.release()


def test_a_lease_directory_that_cannot_be_made_is_an_os_error(tmp_path: Path) -> None:
    allocator = PortAllocator(tmp_path / "run" / "ports", 40000, 40001, owner="ipv4")
    shutil.rmtree(tmp_path / "run")
    (tmp_path / "run").write_text("not a directory")

    with pytest.raises(NotADirectoryError):
        allocator.lease()


def test_the_abstract_name_depends_on_the_state_dir_only(tmp_path: Path) -> None:
    one = ctl.abstract_address(tmp_path / "run")
    assert one == ctl.abstract_address(tmp_path / "x" / ".." / "run")
    assert one != ctl.abstract_address(tmp_path / "other")
    assert one.startswith("\0")
    assert len(one.encode()) < 108
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(one)  # a valid abstract address
