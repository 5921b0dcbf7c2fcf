"""Tests for ftpsup.ports: one passive range shared across threads and processes, and leases of
a killed process coming back at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.ports import PortAllocator, PortLease
from tests.ports.leases import (
    CHILD_TIMEOUT,
    MAX_PORT,
    MIN_PORT,
    RANGE,
    lease_everything,
    release_all,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


# A child process: waits for "go" on stdin, leases every port it can, prints them as one JSON
# line, then holds its leases until stdin closes (or until it is killed).
CHILD_SCRIPT = """
import json, sys
from pathlib import Path
from ftpsup.ports import PortAllocator
alloc = PortAllocator(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), owner=sys.argv[4])
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(2)
held = []
for _ in range(int(sys.argv[3]) - int(sys.argv[2]) + 1):
    lease = alloc.lease()
    if lease is None:
        break
    held.append(lease)
print(json.dumps([lease.port for lease in held]), flush=True)
sys.stdin.read()
"""


def start_child(lease_dir: Path, owner: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT, str(lease_dir), str(MIN_PORT), str(MAX_PORT), owner],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def read_ports(child: subprocess.Popen[str]) -> set[int]:
    assert child.stdout is not None
    return set(json.loads(child.stdout.readline()))


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=CHILD_TIMEOUT)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def test_two_allocators_in_one_process_never_share_a_port(lease_dir: Path) -> None:
    a = PortAllocator(lease_dir, MIN_PORT, MAX_PORT, owner="ipv4")
    b = PortAllocator(lease_dir, MIN_PORT, MAX_PORT, owner="ipv6")
    held: list[PortLease] = []
    try:
        for _ in range(len(RANGE)):
            for alloc in (a, b):
                lease = alloc.lease()
                if lease is not None:
                    held.append(lease)
        ports = [lease.port for lease in held]
        assert sorted(ports) == sorted(RANGE)
        assert a.lease() is None
        assert b.lease() is None
    finally:
        release_all(held)


def test_threads_sharing_one_allocator_never_share_a_port(allocator: PortAllocator) -> None:
    results: list[list[PortLease]] = [[] for _ in range(4)]

    def worker(out: list[PortLease]) -> None:
        for _ in range(len(RANGE)):
            lease = allocator.lease()
            if lease is None:
                return
            out.append(lease)

    threads = [threading.Thread(target=worker, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=CHILD_TIMEOUT)
    held = [lease for out in results for lease in out]
    try:
        ports = [lease.port for lease in held]
        assert len(ports) == len(set(ports))
        assert set(ports) == RANGE
        assert allocator.statistics().leased_now == len(RANGE)
    finally:
        release_all(held)


def test_processes_never_share_a_port(
    lease_dir: Path, children: list[subprocess.Popen[str]]
) -> None:
    children.extend(start_child(lease_dir, f"inst{n}") for n in range(3))
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    port_sets = [read_ports(child) for child in children]
    union: set[int] = set()
    for ports in port_sets:
        assert union.isdisjoint(ports)
        union |= ports
    assert union == RANGE


def test_killed_process_leases_come_back_at_once(
    lease_dir: Path, allocator: PortAllocator, children: list[subprocess.Popen[str]]
) -> None:
    child = start_child(lease_dir, "ipv6")
    children.append(child)
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    assert read_ports(child) == RANGE
    assert allocator.lease() is None

    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=CHILD_TIMEOUT) == -signal.SIGKILL

    held = lease_everything(allocator)
    try:
        assert {lease.port for lease in held} == RANGE
    finally:
        release_all(held)


def test_leases_in_use_shows_holder_text(
    lease_dir: Path, allocator: PortAllocator, children: list[subprocess.Popen[str]]
) -> None:
    mine = allocator.lease()
    assert mine is not None
    child = start_child(lease_dir, "ipv6")
    children.append(child)
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    theirs = read_ports(child)

    in_use = allocator.leases_in_use()

    assert [port for port, _ in in_use] == sorted(RANGE)
    holders = dict(in_use)
    owner, pid, stamp = holders[mine.port].split()
    assert (owner, int(pid)) == ("ipv4", os.getpid())
    assert int(stamp) > 0
    for port in theirs:
        assert holders[port].split()[:2] == ["ipv6", str(child.pid)]
    mine.release()
