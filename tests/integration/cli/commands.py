"""Helpers of the command-line tests: `ftpsup` and `ftpsup user` run from the checkout with a
timeout, and a free or closed loopback port.
"""

from __future__ import annotations

import functools
import socket
from pathlib import Path

import pytest

from tests.ftpsup_cli import run_ftpsup

REPO = Path(__file__).resolve().parents[3]


ftpsup = functools.partial(run_ftpsup, cwd=REPO)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def assert_nothing_listens(port: int) -> None:
    with socket.socket() as sock:
        sock.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))
