"""Helpers of the command-line tests: `ftpsup` and `ftpsup user` run from the checkout with a
timeout, and a free or closed loopback port.
"""

from __future__ import annotations

import functools
import socket
from pathlib import Path

import pytest

from tests.ftpsup_cli import run_ftpsup
from tests.integration.supervisors import free_ports

REPO = Path(__file__).resolve().parents[3]


ftpsup = functools.partial(run_ftpsup, cwd=REPO)


def free_port() -> int:
    """A port free on both stacks, below the kernel's ephemeral range.

    A port the kernel handed out and took back may at once be another test's listener or
    client socket; one drawn below the ephemeral range is only ever taken on purpose.
    """
    return free_ports(1)


def assert_nothing_listens(port: int) -> None:
    with socket.socket() as sock:
        sock.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))
