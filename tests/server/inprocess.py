"""An instance's context in this test process, and the process-wide logging put back after.

make_context points the shared "ftpsup.users" logger at the instance's log, as a server process
wants; a test process runs many instances one after another, so each test puts it back, and
stops the instance's writer thread, when it is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
