"""Instance logs: vsftpd-format event lines and a wu-ftpd xferlog, written off the event loop.

Rules:
1. The instance log uses vsftpd's line format, word for word, because log readers already
   parse it: fail2ban's stock `vsftpd` filter matches
   `[pid N] [user] FAIL LOGIN: Client "<HOST>"`. So event lines (CONNECT, LOGIN, UPLOAD,
   DOWNLOAD) are logged at INFO, which carries no level prefix; only WARNING and above are
   prefixed with their level name.
2. Times are local time with English day and month names, whatever the locale, as vsftpd
   writes them ("Fri Nov  7 08:21:52 2026": the day of the month is padded with a space).
3. The arguments of PASS are never logged.
4. Whatever a client sent is made printable before it is written (vsftpd turns unprintable
   characters into "?"), so no client can start a forged line; "]" is also replaced in the
   [user] field, which fail2ban reads up to the first "]".
5. File I/O never runs on the event loop's thread: lines pass through a queue to a writer
   thread (log_writer), and XferLog.write is called from a worker thread.
6. logrotate friendly: a log file that was moved away is reopened at its path on the next
   write, and reopen_logs() forces that at once.
7. The event lines of a session (CONNECT, LOGIN, UPLOAD/DOWNLOAD) are the instance log's
   whole load under a burst of sessions, so they skip the logging machinery (caller lookup,
   LogRecord, QueueHandler's copy): when the logger is an instance's own, as set up here and
   unchanged, the line is formatted on the spot and queued as text. Any other logger (or one
   given extra handlers or filters) gets an ordinary LogRecord, formatted alike.
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

from ftpsup.log_writer import LineWriter

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LOG_DIR_MODE = 0o750
_LOG_FILE_MODE = 0o640


# The last second formatted and its text: a busy server logs many lines per second, all of
# them with the same time. One tuple, replaced whole, so threads never see half an update.
_last_time: tuple[int, str] = (-1, "")


def vsftpd_time(when: float) -> str:
    """Format `when` (seconds since the epoch) in local time as vsftpd and xferlog(5) do.

    Args:
        when: seconds since the epoch.

    Returns:
        For example "Fri Nov  7 08:21:52 2026": English names, space-padded day.
    """
    global _last_time
    second = int(when)
    cached = _last_time
    if cached[0] == second:
        return cached[1]
    tm = time.localtime(second)
    text = (
        f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tm.tm_year}"
    )
    _last_time = (second, text)
    return text


def printable(text: str) -> str:
    """Replace every unprintable character (controls, line breaks, lone surrogates) by "?"."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "?" for c in text)


class VsftpdFormatter(logging.Formatter):
    """Formats records as vsftpd does: `<time> [pid N] [<user>] <message>`.

    The `[<user>]` part appears only when the record carries a non-empty `user` attribute
    (`extra={"user": ...}`); WARNING and above put their level name before the message.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = printable(record.getMessage())
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname}: {message}"
        user = getattr(record, "user", None)
        user_part = f"[{printable(str(user)).replace(']', '?')}] " if user else ""
        line = f"{vsftpd_time(record.created)} [pid {record.process}] {user_part}{message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


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


@attrs.define
class _InstanceLogging:
    logger: logging.Logger
    queue_handler: logging.handlers.QueueHandler
    writer: LineWriter
    target: logging.Handler


_active: dict[str, _InstanceLogging] = {}
_active_lock = threading.Lock()
# Each set-up instance logger and its queue handler, for the direct path (rule 7). Replaced
# whole, never changed in place, so a reader never needs the lock.
_direct: dict[logging.Logger, logging.handlers.QueueHandler] = {}


def _make_parent(path: Path) -> None:
    path.parent.mkdir(mode=_LOG_DIR_MODE, parents=True, exist_ok=True)


def setup_instance_logging(
    instance: str, log_file: Path | None, *, debug: bool = False
) -> logging.Logger:
    """Route the logger `ftpsup.<instance>` (and its children) to a file or stderr.

    Records are formatted on the caller's thread and written by a LineWriter thread.
    Calling it again for the same instance replaces the earlier setup.

    Args:
        instance: instance name; the logger is `ftpsup.<instance>`.
        log_file: file to append to (parent directories are created 0750), or None for stderr.
        debug: also log DEBUG records (FTP commands and replies).

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
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    queue_handler = logging.handlers.QueueHandler(records)
    queue_handler.setFormatter(VsftpdFormatter())
    writer = LineWriter(records, target)

    logger = logging.getLogger(f"ftpsup.{instance}")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    # The instance's file is the only destination; the root logger must not repeat lines.
    logger.propagate = False
    with _active_lock:
        previous = _active.pop(instance, None)
        if previous is not None:
            _publish_direct()
            _stop(previous)
        writer.start()
        logger.addHandler(queue_handler)
        _active[instance] = _InstanceLogging(logger, queue_handler, writer, target)
        _publish_direct()
    return logger


def _publish_direct() -> None:
    # Called with _active_lock held.
    global _direct
    _direct = {setup.logger: setup.queue_handler for setup in _active.values()}


def _stop(setup: _InstanceLogging) -> None:
    setup.logger.removeHandler(setup.queue_handler)
    # stop() writes every line queued before it, then joins the writer thread.
    setup.writer.stop()
    setup.target.close()


def shutdown_logging() -> None:
    """Write out every queued record, stop the writer threads and close the files."""
    with _active_lock:
        setups = list(_active.values())
        _active.clear()
        _publish_direct()
    for setup in setups:
        _stop(setup)


def reopen_logs() -> None:
    """Reopen every instance log file at its path, as logrotate's postrotate expects."""
    with _active_lock:
        targets = [setup.target for setup in _active.values()]
    for target in targets:
        if isinstance(target, _LogFileHandler):
            target.force_reopen()


def _event(logger: logging.Logger, user: str | None, message: str) -> None:
    """Log an INFO event line, straight onto the instance's queue when that is all it takes."""
    handler = _direct.get(logger)
    if (
        handler is None
        or logger.handlers != [handler]
        or logger.filters
        or handler.filters
        or not logger.isEnabledFor(logging.INFO)
    ):
        logger.info("%s", message, extra={"user": user})
        return
    # What VsftpdFormatter makes of an INFO record with this message and user.
    user_part = f"[{printable(user).replace(']', '?')}] " if user else ""
    handler.queue.put_nowait(
        f"{vsftpd_time(time.time())} [pid {os.getpid()}] {user_part}{printable(message)}"
    )


def log_connect(logger: logging.Logger, client_ip: str) -> None:
    """Log a new control connection: `CONNECT: Client "ip"`."""
    _event(logger, None, f'CONNECT: Client "{client_ip}"')


def log_login(logger: logging.Logger, user: str, client_ip: str, *, ok: bool) -> None:
    """Log a login attempt: `[user] OK LOGIN: Client "ip"` or `FAIL LOGIN` (fail2ban reads it)."""
    _event(logger, user, f'{"OK" if ok else "FAIL"} LOGIN: Client "{client_ip}"')


def log_transfer(
    logger: logging.Logger,
    user: str,
    client_ip: str,
    *,
    upload: bool,
    ok: bool,
    path: str,
    size: int,
    seconds: float,
) -> None:
    """Log a finished transfer as vsftpd does.

    For example `OK DOWNLOAD: Client "1.2.3.4", "/file", 1234 bytes, 567.89Kbyte/sec`.
    Like vsftpd, the byte count is left out when nothing was transferred.
    """
    words = [
        f'{"OK" if ok else "FAIL"} {"UPLOAD" if upload else "DOWNLOAD"}: Client "{client_ip}"',
        f'"{path}"',
    ]
    if size:
        words.append(f"{size} bytes")
    # vsftpd's floor for a transfer that took no measurable time.
    elapsed = seconds if seconds > 0 else 0.1
    words.append(f"{size / elapsed / 1024:.2f}Kbyte/sec")
    _event(logger, user, ", ".join(words))


def _redact(line: str) -> str:
    verb = line.lstrip().split(" ", 1)[0]
    if verb.upper() == "PASS":
        return "PASS <hidden>"
    return line


def log_command(logger: logging.Logger, user: str | None, client_ip: str, line: str) -> None:
    """Log a received command at DEBUG; a PASS line is written as `PASS <hidden>`."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            'FTP command: Client "%s", "%s"', client_ip, _redact(line), extra={"user": user}
        )


def log_reply(
    logger: logging.Logger, user: str | None, client_ip: str, code: int, text: str
) -> None:
    """Log a sent reply at DEBUG: `FTP response: Client "ip", "230 Login successful."`."""
    logger.debug('FTP response: Client "%s", "%d %s"', client_ip, code, text, extra={"user": user})


@attrs.frozen
class TransferRecord:
    """One finished (or aborted) transfer, as xferlog(5) records it.

    `finished` is seconds since the epoch; `seconds` is how long the transfer took;
    `complete` is False for an aborted or failed transfer.
    """

    finished: float
    seconds: float
    remote_host: str
    size: int
    path: str
    ascii: bool
    upload: bool
    anonymous: bool
    user: str
    complete: bool


def _one_field(text: str) -> str:
    # Analysers split xferlog lines on whitespace, so no field may contain any.
    return "".join("_" if c.isspace() else c for c in printable(text)) or "_"


def xferlog_line(rec: TransferRecord) -> str:
    """Format one wu-ftpd xferlog(5) line, without the newline.

    Fields: current-time (5 words), transfer-time (whole seconds, at least 1, as vsftpd),
    remote-host, file-size, filename (spaces become "_"), transfer-type (a/b),
    special-action-flag (_), direction (o/i), access-mode (a/r), username, service-name (ftp),
    authentication-method (0), authenticated-user-id (*), completion-status (c/i).

    Args:
        rec: the transfer to record.

    Returns:
        The line; it always splits into 18 whitespace-separated words.
    """
    return " ".join(
        [
            vsftpd_time(rec.finished),
            str(max(1, round(rec.seconds))),
            _one_field(rec.remote_host),
            str(rec.size),
            _one_field(rec.path),
            "a" if rec.ascii else "b",
            "_",
            "i" if rec.upload else "o",
            "a" if rec.anonymous else "r",
            _one_field(rec.user),
            "ftp",
            "0",
            "*",
            "c" if rec.complete else "i",
        ]
    )


class XferLog:
    """Appends xferlog lines to one file, reopening it when logrotate moved it away.

    Each line goes out in one write() on an O_APPEND descriptor, so instances sharing the
    file never interleave their lines. One XferLog may be shared by several threads.
    """

    def __init__(self, path: Path) -> None:
        """Remember the path; the file is opened (and created 0640) by the first write."""
        self._path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._identity: tuple[int, int] = (-1, -1)

    def write(self, rec: TransferRecord) -> None:
        """Append one line; blocks on file I/O, so async callers use a worker thread.

        Raises:
            OSError: the file cannot be created or written.
        """
        data = (xferlog_line(rec) + "\n").encode("utf-8", "replace")
        with self._lock:
            fd = self._open_current()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

    def reopen(self) -> None:
        """Close the file now; the next write opens whatever file is at the path then."""
        self.close()

    def close(self) -> None:
        """Close the file; a later write opens it again."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)

    def _open_current(self) -> int:
        if self._fd is not None:
            try:
                st = os.stat(self._path)
                moved = (st.st_dev, st.st_ino) != self._identity
            except FileNotFoundError:
                moved = True
            if not moved:
                return self._fd
            os.close(self._fd)
            self._fd = None
        _make_parent(self._path)
        fd = os.open(
            self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _LOG_FILE_MODE
        )
        st = os.fstat(fd)
        self._fd, self._identity = fd, (st.st_dev, st.st_ino)
        return fd
