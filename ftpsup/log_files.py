"""Where log lines go: one writer thread per instance, to its log file (or stderr) and xferlog.

Theory of operation: an instance logs through `ftpsup.<instance>` and its area loggers
(`InstanceLogs`: control, data, tls, auth; children of the instance's logger, so their lines
land in the same file in the same format). Its xferlog lines go through
`ftpsup.<instance>.xferlog`, which does not propagate. Both put finished lines on one queue,
and one QueueListener thread takes them off and writes them: vsftpd-format lines to the
instance log, xferlog lines to xferlog_file. So the event loop never touches a file, and no
session waits for a log write or fails by one.

Rules:
1. Files are created 0640 and their directories 0750: logs name users and client addresses.
2. logrotate friendly: a log file that was moved away is reopened at its path on the next
   write, and reopen_logs() forces that at once, for the xferlog too.
3. A failing xferlog write (a full disk) costs that line only. The instance log says so once,
   when the writes start failing, and once more when they succeed again: never a line per
   transfer, and never an error for the session whose transfer it was.
4. shutdown_logging() writes out every queued line before it closes the files.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from ftpsup.logs import TransferRecord, VsftpdFormatter, set_direct, xferlog_line

_LOG_DIR_MODE = 0o750
_LOG_FILE_MODE = 0o640

# How long the writer thread lets records gather after it wakes, before it writes them.
WRITER_BATCH_SECONDS = 0.02


@attrs.frozen
class InstanceLogs:
    """The loggers of one instance: `ftpsup.<instance>` and one child per area.

    The area names the part of ftpsup a line comes from (`ftpsup.ipv4.data`), for filters
    and levels; the lines themselves look the same whatever the area (logs.py, rule 1).
    """

    main: logging.Logger
    control: logging.Logger
    data: logging.Logger
    tls: logging.Logger
    auth: logging.Logger

    @classmethod
    def of(cls, instance: str) -> InstanceLogs:
        """The loggers of `instance`, as setup_instance_logging routes them."""
        main = logging.getLogger(f"ftpsup.{instance}")
        return cls(
            main=main,
            control=main.getChild("control"),
            data=main.getChild("data"),
            tls=main.getChild("tls"),
            auth=main.getChild("auth"),
        )


def _xferlog_logger(instance: str) -> logging.Logger:
    return logging.getLogger(f"ftpsup.{instance}.xferlog")


class XferLog:
    """The sessions' side of an instance's xferlog: `write` queues one line, at once.

    Safe on the event loop: it formats the line and queues it, and the writer thread does
    the file I/O (rule 3: a failing write is the writer's business, not the caller's).
    """

    def __init__(self, instance: str) -> None:
        self._logger = _xferlog_logger(instance)

    def write(self, rec: TransferRecord) -> None:
        """Queue the xferlog line of `rec`; never blocks on the file, never raises for it."""
        self._logger.info("%s", xferlog_line(rec))


def _create_log_file(path: str, flags: int) -> int:
    return os.open(path, flags, _LOG_FILE_MODE)


class _LogFileHandler(logging.handlers.WatchedFileHandler):
    """A WatchedFileHandler whose new files are 0640: logs name users and client addresses."""

    def _open(self) -> Any:
        return open(  # noqa: SIM115 - the handler owns the stream and closes it
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=_create_log_file,
        )

    def force_reopen(self) -> None:
        """Reopen the file at its path even if it looks unchanged (SIGHUP, SIGUSR1)."""
        self.acquire()
        try:
            # An impossible identity makes reopenIfNeeded treat the file as replaced.
            self.dev = self.ino = -1
            self.reopenIfNeeded()
        finally:
            self.release()


class XferlogHandler(logging.Handler):
    """Appends xferlog lines to one file, on the writer thread; reports failures once.

    Each line goes out in one write() on an O_APPEND descriptor, so instances sharing the
    file never interleave their lines. A file that logrotate moved away is reopened at its
    path by the next write.
    """

    def __init__(self, path: Path, report: logging.Handler, reporter: str) -> None:
        """Remember the path; the file is opened (and created 0640) by the first line.

        Args:
            path: the xferlog file.
            report: where a failure is reported: the instance log's handler.
            reporter: the logger name the failure lines carry (the instance's).
        """
        super().__init__()
        self.path = path
        self._report = report
        self._reporter = reporter
        self._fd: int | None = None
        self._identity: tuple[int, int] = (-1, -1)
        self._failing = False

    def emit(self, record: logging.LogRecord) -> None:
        data = (record.getMessage() + "\n").encode("utf-8", "replace")
        try:
            fd = self._open_current()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            if not self._failing:
                self._failing = True
                self._tell(
                    logging.WARNING,
                    "xferlog_file %s: %s; transfers are not recorded there until it can be "
                    "written again",
                    self.path,
                    exc.strerror or exc,
                )
            return
        if self._failing:
            self._failing = False
            self._tell(logging.INFO, "xferlog_file %s: written again", self.path)

    def _tell(self, level: int, message: str, *args: object) -> None:
        # Straight to the instance log's handler: this runs on the writer thread, and a
        # record queued from here could land behind shutdown's end marker and be lost.
        record = logging.LogRecord(self._reporter, level, __file__, 0, message, args, None)
        record.msg, record.args = VsftpdFormatter().format(record), None
        self._report.handle(record)

    def reopen(self) -> None:
        """Close the file now; the next line opens whatever file is at the path then."""
        self.acquire()
        try:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
        finally:
            self.release()

    def close(self) -> None:
        """Close the file; a later line opens it again."""
        self.reopen()
        super().close()

    def _open_current(self) -> int:
        if self._fd is not None:
            try:
                st = os.stat(self.path)
                moved = (st.st_dev, st.st_ino) != self._identity
            except FileNotFoundError:
                moved = True
            if not moved:
                return self._fd
            os.close(self._fd)
            self._fd = None
        _make_parent(self.path)
        fd = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _LOG_FILE_MODE
        )
        st = os.fstat(fd)
        self._fd, self._identity = fd, (st.st_dev, st.st_ino)
        return fd


class _BatchingListener(logging.handlers.QueueListener):
    """A QueueListener that wakes at most once per WRITER_BATCH_SECONDS under load.

    Each wake-up of an idle writer thread costs the logging thread a futex wake and both
    threads a GIL hand-over; at three lines per session that was a measurable share of a
    busy instance's CPU. A record queued while the writer is not waiting wakes no one.
    """

    def __init__(self, records: queue.SimpleQueue[Any], *targets: logging.Handler) -> None:
        super().__init__(records, *targets, respect_handler_level=True)
        self._records = records

    def dequeue(self, block: bool) -> Any:
        try:
            return self._records.get_nowait()
        except queue.Empty:
            if not block:
                raise
        record = self._records.get()
        time.sleep(WRITER_BATCH_SECONDS)
        return record


@attrs.define
class _InstanceLogging:
    # (logger, the QueueHandler that feeds the writer thread from it)
    feeds: list[tuple[logging.Logger, logging.handlers.QueueHandler]]
    listener: logging.handlers.QueueListener
    targets: list[logging.Handler]


_active: dict[str, _InstanceLogging] = {}
_active_lock = threading.Lock()


def _make_parent(path: Path) -> None:
    path.parent.mkdir(mode=_LOG_DIR_MODE, parents=True, exist_ok=True)


def _feed(
    logger: logging.Logger, records: queue.SimpleQueue[Any], formatter: logging.Formatter
) -> tuple[logging.Logger, logging.handlers.QueueHandler]:
    handler = logging.handlers.QueueHandler(records)
    handler.setFormatter(formatter)
    # The writer's files are the only destination; the root logger must not repeat lines.
    logger.propagate = False
    return logger, handler


def setup_instance_logging(
    instance: str,
    log_file: Path | None,
    *,
    debug: bool = False,
    xferlog_file: Path | None = None,
) -> logging.Logger:
    """Route the logger `ftpsup.<instance>` (and its children) to a file or stderr.

    Records are formatted on the caller's thread and written by a QueueListener thread.
    Calling it again for the same instance replaces the earlier setup.

    Args:
        instance: instance name; the logger is `ftpsup.<instance>`.
        log_file: file to append to (parent directories are created 0750), or None for stderr.
        debug: also log DEBUG records (FTP commands and replies).
        xferlog_file: where `XferLog(instance)` lines go (created 0640 by the first line), or
            None for no xferlog.

    Returns:
        The instance's logger.

    Raises:
        OSError: the log file or its directory cannot be created or opened.
    """
    target: logging.Handler
    if log_file is None:
        target = logging.StreamHandler(sys.stderr)
    else:
        _make_parent(log_file)
        target = _LogFileHandler(log_file, encoding="utf-8", errors="replace")
    # The message is complete when it is queued; the writer thread adds nothing to it.
    target.setFormatter(logging.Formatter("%(message)s"))
    xferlog_name = _xferlog_logger(instance).name
    target.addFilter(lambda record: record.name != xferlog_name)
    targets: list[logging.Handler] = [target]
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    logger = logging.getLogger(f"ftpsup.{instance}")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    feeds = [_feed(logger, records, VsftpdFormatter())]
    if xferlog_file is not None:
        xferlog = XferlogHandler(xferlog_file, target, logger.name)
        xferlog.addFilter(lambda record: record.name == xferlog_name)
        targets.append(xferlog)
        xferlog_logger = _xferlog_logger(instance)
        xferlog_logger.setLevel(logging.INFO)
        feeds.append(_feed(xferlog_logger, records, logging.Formatter("%(message)s")))
    listener = _BatchingListener(records, *targets)
    with _active_lock:
        previous = _active.pop(instance, None)
        if previous is not None:
            _stop(previous)
        listener.start()
        for fed, handler in feeds:
            # After _stop(previous), which leaves the logger propagating again.
            fed.propagate = False
            fed.addHandler(handler)
        # The instance's event lines may skip the logging machinery (logs.py, rule 6).
        set_direct(logger, feeds[0][1], records.put_nowait)
        _active[instance] = _InstanceLogging(feeds, listener, list(targets))
    return logger


def _stop(setup: _InstanceLogging) -> None:
    for logger, handler in setup.feeds:
        set_direct(logger, None)
        logger.removeHandler(handler)
        # Left as found: a later setup (or a test's log capture) in this process must not
        # meet a logger that still keeps its lines from the root logger.
        logger.propagate = True
    # stop() writes every record queued before it, then joins the writer thread.
    setup.listener.stop()
    for target in setup.targets:
        target.close()


def shutdown_logging() -> None:
    """Write out every queued record, stop the writer threads and close the files."""
    with _active_lock:
        setups = list(_active.values())
        _active.clear()
    for setup in setups:
        _stop(setup)


def reopen_logs() -> None:
    """Reopen every log file and xferlog at its path, as logrotate's postrotate expects."""
    with _active_lock:
        targets = [target for setup in _active.values() for target in setup.targets]
    for target in targets:
        if isinstance(target, _LogFileHandler):
            target.force_reopen()
        elif isinstance(target, XferlogHandler):
            target.reopen()
