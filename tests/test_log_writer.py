"""Tests for ftpsup.log_writer: lines written in order, a batch per write, all of them at stop."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from ftpsup.log_writer import MAX_BATCH_LINES, LineWriter


class Writes(logging.Handler):
    """Keeps the text of every record it is asked to write, one entry per call."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.writes: list[str] = []
        self.threads: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.writes.append(self.format(record))
        self.threads.add(threading.current_thread().name)


def _queued(*items: Any) -> queue.SimpleQueue[Any]:
    lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for item in items:
        lines.put(item)
    return lines


def test_lines_waiting_together_go_out_in_one_write_in_order() -> None:
    target = Writes()
    writer = LineWriter(_queued("one", "two", "three"), target)
    writer.start()
    writer.stop()
    assert target.writes == ["one\ntwo\nthree"]
    assert target.threads == {"ftpsup log writer"}


def test_records_are_formatted_by_the_target_between_lines() -> None:
    target = Writes()
    record = logging.makeLogRecord({"msg": "a %s record", "args": ("formatted",)})
    writer = LineWriter(_queued("before", record, "after"), target)
    writer.start()
    writer.stop()
    assert target.writes == ["before\na formatted record\nafter"]


def test_stop_writes_everything_queued_before_it_and_ends_the_thread() -> None:
    target = Writes()
    lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
    writer = LineWriter(lines, target)
    before = set(threading.enumerate())
    writer.start()
    (thread,) = set(threading.enumerate()) - before
    for n in range(50):
        lines.put(f"line {n}")
    writer.stop()
    written = "\n".join(target.writes).split("\n")
    assert written == [f"line {n}" for n in range(50)]
    assert not thread.is_alive()
    writer.stop()  # a second stop does nothing


def test_a_flood_is_written_in_bounded_batches() -> None:
    target = Writes()
    count = 2 * MAX_BATCH_LINES + 5
    writer = LineWriter(_queued(*(f"l{n}" for n in range(count))), target)
    writer.start()
    writer.stop()
    assert [w.count("\n") + 1 for w in target.writes] == [MAX_BATCH_LINES, MAX_BATCH_LINES, 5]
    assert "\n".join(target.writes).split("\n") == [f"l{n}" for n in range(count)]
