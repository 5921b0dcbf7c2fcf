"""Tests for ftpsup.ports.PortAllocator in one process: the range, leasing and releasing, round
robin, exclusions, statistics, and the holder line of each lease file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from ftpsup.ports import AllocatorStatistics, PortAllocator
from tests.ports.leases import (
    MAX_PORT,
    MIN_PORT,
    RANGE,
    lease_everything,
    release_all,
)


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
