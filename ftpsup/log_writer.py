"""LineWriter: the thread that writes an instance's log lines, a batch at a time.

Theory of operation: the event loop's thread never touches the log file. It puts finished
lines (str) or LogRecords already formatted by a QueueHandler on a SimpleQueue, which costs
no lock hand-over and wakes no one while the writer is busy. The writer thread waits for the
first item, lets more gather for WRITER_BATCH_SECONDS, then takes everything queued and hands
it to the target handler as one record: one stat of the log file (WatchedFileHandler's
rotation check), one write and one flush per batch instead of per line.

Rules:
- Lines keep their order: one queue, one writer, each batch written in the order taken.
- `stop` writes every item queued before it, then ends the thread; items queued after it
  are dropped (the instance has stopped logging).
- A batch is bounded (MAX_BATCH_LINES), so a flood of lines never builds one huge string.
- Errors writing the file are the target handler's to report (Handler.handleError), as for
  any logging handler; the writer keeps running.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

# How long the writer thread lets lines gather after it wakes, before it writes them. Each
# wake-up costs the event loop's thread a futex wake and a GIL hand-over.
WRITER_BATCH_SECONDS = 0.02
MAX_BATCH_LINES = 1000


class _Stop:
    pass


_STOP = _Stop()


class LineWriter:
    """Writes the lines and records queued on `lines` to `target`, from its own thread."""

    def __init__(self, lines: queue.SimpleQueue[Any], target: logging.Handler) -> None:
        self._lines = lines
        self._target = target
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ftpsup log writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write everything queued so far, then end the thread (a no-op if not started)."""
        if self._thread is None:
            return
        self._lines.put(_STOP)
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while True:
            first = self._lines.get()
            if first is not _STOP:
                time.sleep(WRITER_BATCH_SECONDS)
            batch, stopping = self._take(first)
            if batch:
                self._write(batch)
            if stopping:
                return

    def _take(self, first: Any) -> tuple[list[str], bool]:
        batch: list[str] = []
        item = first
        while True:
            if item is _STOP:
                return batch, True
            batch.append(item if isinstance(item, str) else self._text(item))
            if len(batch) >= MAX_BATCH_LINES:
                return batch, False
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                return batch, False

    def _text(self, record: logging.LogRecord) -> str:
        try:
            return self._target.format(record)
        except Exception:
            self._target.handleError(record)
            return ""

    def _write(self, batch: list[str]) -> None:
        # One record for the batch: the handler adds the last line end, and checks the file
        # for rotation once.
        text = "\n".join(line for line in batch if line)
        if text:
            self._target.handle(
                logging.makeLogRecord({"msg": text, "levelno": logging.INFO, "levelname": "INFO"})
            )
