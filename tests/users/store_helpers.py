"""Helpers for the user store's tests: cheap scrypt costs, sample records, and the store's log.

The autouse fixture sends the "ftpsup.users" logger to the root logger, where caplog reads it:
a server started in the same process (make_context) would otherwise keep those messages in
the instance's log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ftpsup.users.hashing import hash_password
from ftpsup.users.store import (
    UserRecord,
)

FAST = 4  # scrypt ln for tests where the default cost would only slow them down
SALT = "c2FsdHNhbHRzYWx0c2FsdA"  # 16 bytes
DIGEST = "ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0MTI"  # 32 bytes


@pytest.fixture(autouse=True)
def _store_log_reaches_caplog(monkeypatch: pytest.MonkeyPatch) -> None:
    # A server started in this process (make_context) sends "ftpsup.users" to the instance's
    # log only; these tests read the store's messages through caplog, on the root logger.
    log = logging.getLogger("ftpsup.users")
    monkeypatch.setattr(log, "propagate", True)
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "disabled", False)


def record(name: str, home: str = "/srv/ftp/x", **kwargs: bool) -> UserRecord:
    return UserRecord(name, hash_password("pw-" + name, ln=FAST), Path(home), **kwargs)
