"""Helpers of the passive-range tests: the test range, leasing all of it, and child processes
that lease from the same directory.
"""

from __future__ import annotations

from ftpsup.ports import PortAllocator, PortLease

MIN_PORT = 10080
MAX_PORT = 10100
RANGE = set(range(MIN_PORT, MAX_PORT + 1))
CHILD_TIMEOUT = 30.0


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
