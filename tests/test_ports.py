"""Tests for ftpsup.ports: one passive range shared across threads and processes."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.ports import AllocatorStatistics, PortAllocator, PortLease, file_system_type

MIN_PORT = 10080
MAX_PORT = 10100
RANGE = set(range(MIN_PORT, MAX_PORT + 1))
REPO_ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT = 30.0

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


@pytest.fixture
def lease_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ports"


@pytest.fixture
def allocator(lease_dir: Path) -> PortAllocator:
    return PortAllocator(lease_dir, MIN_PORT, MAX_PORT, owner="ipv4")


def release_all(leases: list[PortLease]) -> None:
    for lease in leases:
        lease.release()


def lease_everything(alloc: PortAllocator) -> list[PortLease]:
    held: list[PortLease] = []
    for _ in range(len(RANGE) + 1):
        lease = alloc.lease()
        if lease is None:
            break
        held.append(lease)
    return held


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


def test_lease_dir_is_created_private(lease_dir: Path) -> None:
    PortAllocator(lease_dir, MIN_PORT, MAX_PORT, owner="ipv4")
    assert lease_dir.is_dir()
    assert lease_dir.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("low", "high"), [(10100, 10080), (0, 10), (65000, 65536)])
def test_bad_range_is_rejected(lease_dir: Path, low: int, high: int) -> None:
    with pytest.raises(ValueError, match="range"):
        PortAllocator(lease_dir, low, high, owner="ipv4")


def test_exhausted_range_returns_none(allocator: PortAllocator) -> None:
    held = lease_everything(allocator)
    try:
        assert {lease.port for lease in held} == RANGE
        assert allocator.lease() is None
    finally:
        release_all(held)


def test_every_lease_is_inside_the_range(lease_dir: Path) -> None:
    alloc = PortAllocator(lease_dir, 20000, 20002, owner="ipv4")
    held = [alloc.lease() for _ in range(5)]
    try:
        ports = [lease.port if lease else None for lease in held]
        assert ports == [20000, 20001, 20002, None, None]
    finally:
        release_all([lease for lease in held if lease is not None])


def test_released_port_can_be_leased_again(allocator: PortAllocator) -> None:
    held = lease_everything(allocator)
    try:
        freed = held.pop(3)
        freed.release()
        again = allocator.lease()
        assert again is not None
        assert again.port == freed.port
        held.append(again)
    finally:
        release_all(held)


def test_leases_round_robin_so_a_closed_port_is_reused_last(allocator: PortAllocator) -> None:
    first = allocator.lease()
    assert first is not None
    assert first.port == MIN_PORT
    first.release()
    second = allocator.lease()
    assert second is not None
    assert second.port == MIN_PORT + 1
    second.release()
    ports = []
    for _ in range(len(RANGE)):
        lease = allocator.lease()
        assert lease is not None
        ports.append(lease.port)
        lease.release()
    # After the top of the range it wraps; the most recently closed ports come last.
    assert ports == [*range(MIN_PORT + 2, MAX_PORT + 1), MIN_PORT, MIN_PORT + 1]


def test_lease_excluding_skips_busy_ports(allocator: PortAllocator) -> None:
    lease = allocator.lease_excluding({MIN_PORT, MIN_PORT + 1})
    assert lease is not None
    with lease:
        assert lease.port == MIN_PORT + 2


def test_lease_excluding_every_free_port_returns_none(allocator: PortAllocator) -> None:
    held = allocator.lease()
    assert held is not None
    with held:
        assert allocator.lease_excluding(RANGE - {held.port}) is None
        assert allocator.statistics().refused == 1


def test_release_is_idempotent(allocator: PortAllocator) -> None:
    lease = allocator.lease()
    assert lease is not None
    lease.release()
    lease.release()
    assert not lease.held
    assert allocator.statistics().leased_now == 0


def test_context_manager_releases_the_lease(allocator: PortAllocator) -> None:
    lease = allocator.lease()
    assert lease is not None
    with lease:
        assert [port for port, _ in allocator.leases_in_use()] == [lease.port]
    assert not lease.held
    assert allocator.leases_in_use() == []


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


def test_leases_in_use_does_not_disturb_holders(allocator: PortAllocator) -> None:
    lease = allocator.lease()
    assert lease is not None
    with lease:
        for _ in range(3):
            assert [port for port, _ in allocator.leases_in_use()] == [lease.port]
        # The probe left the lease locked: nobody else can take that port.
        assert allocator.lease_excluding(RANGE - {lease.port}) is None


def test_leases_in_use_forgets_released_and_stale_files(allocator: PortAllocator) -> None:
    lease = allocator.lease()
    assert lease is not None
    lease.release()
    # The lock file stays on disk with the old holder text; only the lock counts.
    assert allocator.leases_in_use() == []


def test_statistics_count_grants_releases_and_refusals(allocator: PortAllocator) -> None:
    held = [allocator.lease() for _ in RANGE]
    assert allocator.lease() is None
    assert held[0] is not None
    held[0].release()
    stats = allocator.statistics()
    release_all([lease for lease in held if lease is not None])
    assert stats == AllocatorStatistics(
        range_size=len(RANGE), leased_now=len(RANGE) - 1, granted=len(RANGE), refused=1
    )


def test_lease_rewrites_the_holder_line_in_place_without_truncating(
    lease_dir: Path, allocator: PortAllocator
) -> None:
    # Truncating the lock file on every lease made the file system free and reallocate its
    # block each time; the holder line is overwritten in place instead.
    stale = "x" * 200 + "\n"
    for port in RANGE:
        (lease_dir / f"{port}.lock").write_text(stale)
    lease = allocator.lease()
    assert lease is not None
    lease.release()
    data = (lease_dir / f"{lease.port}.lock").read_bytes()
    assert len(data) == len(stale)
    assert data.split(b"\n", 1)[0].split()[0] == b"ipv4"


def test_holder_text_ignores_a_longer_line_left_by_an_earlier_holder(
    lease_dir: Path, allocator: PortAllocator
) -> None:
    for port in RANGE:
        (lease_dir / f"{port}.lock").write_text(
            "an-earlier-instance-with-a-long-name 1 1" * 4 + "\n"
        )
    lease = allocator.lease()
    assert lease is not None
    with lease:
        [(port, text)] = allocator.leases_in_use()
    owner, pid, stamp = text.split()
    assert (port, owner, int(pid)) == (lease.port, "ipv4", os.getpid())
    assert int(stamp) > 0


def test_a_status_probe_at_the_wrong_moment_does_not_refuse_a_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allocator = PortAllocator(tmp_path, 40000, 40000, owner="probe-test")
    first = allocator.lease()
    assert first is not None
    first.release()
    # `ftpsup status` holds a shared probe lock for an instant; here, until the allocator
    # looks again.
    probe = os.open(allocator._path(40000), os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    monkeypatch.setattr(
        "ftpsup.ports.time.sleep", lambda seconds: fcntl.flock(probe, fcntl.LOCK_UN)
    )
    try:
        lease = allocator.lease()
    finally:
        os.close(probe)

    assert lease is not None
    assert lease.port == 40000
    lease.release()


def test_lock_files_are_created_ahead_once_and_held_leases_are_untouched(
    lease_dir: Path,
) -> None:
    allocator = PortAllocator(lease_dir, 30000, 30009, owner="ipv4")
    held = allocator.lease()
    assert held is not None
    holder_line = (lease_dir / f"{held.port}.lock").read_bytes()
    assert allocator.create_lock_files() == 9
    assert sorted(p.name for p in lease_dir.iterdir()) == [f"{p}.lock" for p in range(30000, 30010)]
    assert allocator.create_lock_files() == 0
    assert (lease_dir / f"{held.port}.lock").read_bytes() == holder_line
    assert allocator.leases_in_use()[0][0] == held.port
    others = [allocator.lease() for _ in range(9)]
    assert all(lease is not None for lease in others)
    assert allocator.lease() is None
    release_all([held, *(lease for lease in others if lease is not None)])


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev 0 0
/dev/vdb /run/media ext4 rw 0 0
tmpfs /srv/with\\040space tmpfs rw 0 0
proc /proc proc rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/run/ftpsup/ports", "tmpfs"),
        ("/run", "tmpfs"),
        ("/running/ports", "ext4"),  # a prefix of the name is not a parent directory
        ("/run/media/disk/ports", "ext4"),  # the deeper mount wins
        ("/srv/with space/ports", "tmpfs"),  # octal escapes in mount points
        ("/var/lib/ftpsup", "ext4"),
    ],
)
def test_file_system_type_finds_the_mount_holding_a_path(path: str, expected: str) -> None:
    assert file_system_type(path, MOUNTS) == expected


def test_file_system_type_of_nothing_mounted_is_none() -> None:
    assert file_system_type("/x", "") is None


def test_a_lease_directory_on_tmpfs_is_seen_as_in_memory(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if file_system_type(str(shm.resolve()), Path("/proc/self/mounts").read_text()) != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    base = Path(tempfile.mkdtemp(dir=shm))
    try:
        assert PortAllocator(base / "ports", 30000, 30001, owner="ipv4").in_memory()
    finally:
        shutil.rmtree(base)
    on_disk = tmp_path / "ports"
    expected = file_system_type(str(tmp_path.resolve()), Path("/proc/self/mounts").read_text())
    assert PortAllocator(on_disk, 30000, 30001, owner="ipv4").in_memory() == (
        expected in ("tmpfs", "ramfs")
    )


def test_a_first_look_that_finds_the_range_full_is_not_counted_as_refused(
    lease_dir: Path,
) -> None:
    allocator = PortAllocator(lease_dir, 30000, 30000, owner="ipv4")
    held = allocator.lease()
    assert held is not None
    assert allocator.lease_excluding((), second_look=False) is None
    assert allocator.statistics().refused == 0
    assert allocator.lease_excluding(()) is None
    assert allocator.statistics().refused == 1
    held.release()


def test_leases_in_use_skips_a_fifo_planted_in_the_lease_directory(
    lease_dir: Path, allocator: PortAllocator
) -> None:
    # The lease directory belongs to the instances' account; the supervisor (root) probes it
    # for `ftpsup status`. A FIFO there must not block the probe's open for ever (starving
    # the supervisor's worker threads), nor make it fail while someone holds it locked.
    lease = allocator.lease()
    assert lease is not None
    free = MAX_PORT
    assert lease.port not in (MAX_PORT, MIN_PORT + 1)
    fifo = lease_dir / f"{free}.lock"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o600)
    # And a symlink, which the probe's O_NOFOLLOW refuses (ELOOP): skipped, not an error.
    (lease_dir / f"{MIN_PORT + 1}.lock").unlink(missing_ok=True)
    (lease_dir / f"{MIN_PORT + 1}.lock").symlink_to(lease_dir / f"{lease.port}.lock")
    holder: int | None = None
    result: list[object] = []

    def probe() -> None:
        try:
            result.append(allocator.leases_in_use())
        except BaseException as exc:
            result.append(exc)

    try:
        # First with nobody at the other end (a plain open would wait for a writer), then
        # with the FIFO open and locked by its planter.
        for locked in (False, True):
            if locked:
                holder = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
                fcntl.flock(holder, fcntl.LOCK_EX)
            result.clear()
            thread = threading.Thread(target=probe, daemon=True)
            thread.start()
            # A deadline, not pacing: the probe returns at once when it does not block.
            thread.join(10.0)
            if thread.is_alive():
                # Let the stuck open return (a writer appears), then fail.
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                thread.join(CHILD_TIMEOUT)
                pytest.fail("leases_in_use blocked on a FIFO in the lease directory")
            assert len(result) == 1
            assert isinstance(result[0], list), result[0]
            assert [port for port, _ in result[0]] == [lease.port]
    finally:
        if holder is not None:
            os.close(holder)
        lease.release()
