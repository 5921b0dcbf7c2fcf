"""Tests for the lease directory of ftpsup.ports: the file system it is on (tmpfs or disk),
first looks at a full range, and files planted in it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from ftpsup.ports import PortAllocator, file_system_type
from tests.ports.leases import (
    CHILD_TIMEOUT,
    MAX_PORT,
    MIN_PORT,
)

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
