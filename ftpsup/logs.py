"""What ftpsup's log lines say: vsftpd-format event lines and wu-ftpd xferlog lines.

Where they go, through one writer thread per instance, is ftpsup/log_files.py.

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
5. A line is complete when it is logged: formatting happens on the caller's thread, so the
   writer thread (log_files.py) only writes.
6. The event lines of a session (CONNECT, LOGIN, UPLOAD/DOWNLOAD) are a busy instance's whole
   log load, so they skip the logging machinery (caller lookup, a full LogRecord, the queue
   handler's copy) when the logger is an instance's own, as log_files set it up and
   unchanged: the line is formatted here, exactly as VsftpdFormatter would, and queued as a
   finished line. Any other logger (or one given other handlers or filters) gets an ordinary
   record, formatted alike.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import attrs

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


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


def vsftpd_line(when: float, pid: int, user: str | None, message: str) -> str:
    """`<time> [pid N] [<user>] <message>`, the user part only for a non-empty user.

    `message` is written as given: the caller has made it printable.
    """
    user_part = f"[{printable(user).replace(']', '?')}] " if user else ""
    return f"{vsftpd_time(when)} [pid {pid}] {user_part}{message}"


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
        user_name = str(user) if user else None
        line = vsftpd_line(record.created, record.process or 0, user_name, message)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class FinishedLine(logging.LogRecord):
    """A record whose message is already the whole line: what a writer's handlers need of it.

    Built without LogRecord.__init__ (thread and process names, the caller's frame...), which
    a queued, finished line never uses.
    """

    def __init__(self, name: str, line: str) -> None:  # noqa: D107 - no base __init__ on purpose
        self.name = name
        self.msg = self.message = line
        self.args = None
        self.levelno, self.levelname = logging.INFO, "INFO"
        self.exc_info = self.exc_text = self.stack_info = None


# An instance logger -> (the one handler log_files gave it, how to queue a finished line).
_direct: dict[logging.Logger, tuple[logging.Handler, Callable[[logging.LogRecord], None]]] = {}


def set_direct(
    logger: logging.Logger,
    handler: logging.Handler | None,
    put: Callable[[logging.LogRecord], None] | None = None,
) -> None:
    """Let `logger`'s event lines be queued as finished lines while `handler` is its only
    handler (rule 6); None takes that back. Called by log_files when it sets up or stops."""
    if handler is None or put is None:
        _direct.pop(logger, None)
    else:
        _direct[logger] = (handler, put)


def _event(logger: logging.Logger, user: str | None, message: str) -> None:
    """Log an INFO event line, by the direct path when rule 6 allows it."""
    owner = logger
    if owner not in _direct and not logger.handlers and not logger.filters and logger.propagate:
        # An area logger (ftpsup.<instance>.data) without handlers of its own: its lines go
        # to its instance logger's handler, as propagation would take them.
        owner = logger.parent or logger
    direct = _direct.get(owner)
    if direct is not None and owner.handlers == [direct[0]] and not owner.filters:
        if logger.isEnabledFor(logging.INFO):
            line = vsftpd_line(time.time(), os.getpid(), user, printable(message))
            direct[1](FinishedLine(logger.name, line))
        return
    logger.info("%s", message, extra={"user": user} if user else None)


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
