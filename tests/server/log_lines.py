"""Log lines an in-process instance wrote, read from its own logger (not through caplog).

An instance logger keeps its lines from the root logger (log_files), so caplog sees them only
by accident of what ran before; a handler on the instance logger itself sees every record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def lines_of(logger: logging.Logger) -> Iterator[list[str]]:
    """The messages `logger` (and its area loggers) log while the block runs."""
    handler = _Lines()
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
