"""An instance's context in this test process, the process-wide logging put back after, a
bounded wait on server-side state, and a bug injected into one call.

make_context points the shared "ftpsup.users" logger at the instance's log, as a server process
wants; a test process runs many instances one after another, so each test puts it back, and
stops the instance's writer thread, when it is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from ftpsup.config.schema import InstanceConfig
from ftpsup.log_files import shutdown_logging
from ftpsup.server.context import InstanceContext
from ftpsup.server.instance import make_context


@contextmanager
def logging_restored() -> Iterator[None]:
    """Stop every instance's logging and give the users logger back its handlers at the end."""
    users_log = logging.getLogger("ftpsup.users")
    handlers, propagate = list(users_log.handlers), users_log.propagate
    try:
        yield
    finally:
        shutdown_logging()
        users_log.handlers[:] = handlers
        users_log.propagate = propagate


@contextmanager
def instance_context(config: InstanceConfig) -> Iterator[InstanceContext]:
    """make_context(config) for the block, then logging as it was."""
    with logging_restored():
        yield make_context(config)


def anonymous_config(tmp_path: Path, name: str, **settings: Any) -> InstanceConfig:
    """An instance in `tmp_path` whose anonymous users land in `tmp_path/anon` (created)."""
    anon = tmp_path / "anon"
    anon.mkdir(exist_ok=True)
    return InstanceConfig(
        name=name,
        source=tmp_path / f"{name}.toml",
        config_dir=tmp_path,
        state_dir=tmp_path / "run",
        log_dir=tmp_path / "log",
        anonymous_enable=True,
        anon_root=anon,
        **settings,
    )


# How long wait_for waits, on the real clock (the tests' trio clock may be a frozen MockClock).
WAIT_SECONDS = 10


async def wait_for(condition: Callable[[], object], what: str) -> None:
    """Wait until `condition` (server-side state) holds, each look after every task is blocked;
    fail after WAIT_SECONDS of the real clock."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        await trio.testing.wait_all_tasks_blocked()
        if condition():
            return
        # The polling interval of the bounded wait (not pacing), in a thread: under a frozen
        # MockClock a trio.sleep would never end.
        await trio.to_thread.run_sync(time.sleep, 0.01)
    raise AssertionError(f"never: {what}")


def fail_once(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
    """Make `owner.name` raise RuntimeError at its next call only: a bug in one command."""
    real = getattr(owner, name)
    failures = [RuntimeError(f"an injected bug in {name}")]

    def once(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, once)
