"""The fixtures of the passive-range tests: a fresh lease directory, and an allocator of the test
range leasing from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftpsup.ports import PortAllocator
from tests.ports.leases import MAX_PORT, MIN_PORT


@pytest.fixture
def lease_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ports"


@pytest.fixture
def allocator(lease_dir: Path) -> PortAllocator:
    return PortAllocator(lease_dir, MIN_PORT, MAX_PORT, owner="ipv4")
