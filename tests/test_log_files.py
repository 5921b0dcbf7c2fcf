"""Tests for ftpsup.log_files: the writer thread, the files, rotation, the xferlog handler."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.log_files import (
    InstanceLogs,
    XferLog,
    XferlogHandler,
    reopen_logs,
    setup_instance_logging,
    shutdown_logging,
)
from ftpsup.logs import TransferRecord, log_command, log_connect, log_login, xferlog_line
from tests.test_logs import transfer


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    yield
    shutdown_logging()


class NoReport(logging.Handler):
    """Keeps what an XferlogHandler reports, as the instance log's handler would get it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def line_record(rec: TransferRecord) -> logging.LogRecord:
    return logging.LogRecord(
        "ftpsup.test.xferlog", logging.INFO, "", 0, xferlog_line(rec), None, None
    )


def test_instance_log_file_gets_vsftpd_lines(tmp_path: Path) -> None:
    log_file = tmp_path / "log" / "ftpsup" / "ipv4.log"
    logger = setup_instance_logging("ipv4", log_file)
    log_login(logger, "alice", "127.0.0.1", ok=False)
    log_command(logger, "alice", "127.0.0.1", "PASS s3cret")  # DEBUG is off
    shutdown_logging()
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \[pid \d+\] \[alice\] FAIL LOGIN: "
        r'Client "127\.0\.0\.1"',
        lines[0],
    )
    assert log_file.parent.stat().st_mode & 0o007 == 0
    assert log_file.stat().st_mode & 0o137 == 0


def test_debug_log_records_commands_with_pass_hidden(tmp_path: Path) -> None:
    log_file = tmp_path / "ipv6.log"
    logger = setup_instance_logging("ipv6", log_file, debug=True)
    child = logger.getChild("control")
    log_command(child, None, "::1", "USER alice")
    log_command(child, "alice", "::1", "PASS s3cret")
    shutdown_logging()
    text = log_file.read_text()
    assert "s3cret" not in text
    assert text.count("\n") == 2
    assert text.splitlines()[1].endswith('[alice] FTP command: Client "::1", "PASS <hidden>"')


def test_instance_logger_only_queues_records(tmp_path: Path) -> None:
    # The file is written by the listener thread, never by the thread that logs.
    logger = setup_instance_logging("queued", tmp_path / "queued.log")
    assert logger.handlers
    assert all(isinstance(h, logging.handlers.QueueHandler) for h in logger.handlers)


def test_instance_log_does_not_reach_the_root_logger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logger = setup_instance_logging("quiet", tmp_path / "quiet.log")
    with caplog.at_level(logging.DEBUG):
        log_connect(logger, "127.0.0.1")
    assert caplog.records == []


def test_none_log_file_writes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    logger = setup_instance_logging("console", None)
    log_connect(logger, "127.0.0.1")
    shutdown_logging()
    assert capsys.readouterr().err.endswith('CONNECT: Client "127.0.0.1"\n')


def test_shutdown_writes_every_queued_record(tmp_path: Path) -> None:
    log_file = tmp_path / "busy.log"
    logger = setup_instance_logging("busy", log_file)
    for n in range(2000):
        logger.info("line %d", n)
    shutdown_logging()
    lines = log_file.read_text().splitlines()
    assert len(lines) == 2000
    assert lines[-1].endswith("line 1999")


def test_moved_log_file_is_recreated_on_next_write(tmp_path: Path) -> None:
    log_file = tmp_path / "ipv4.log"
    rotated = tmp_path / "ipv4.log.1"
    logger = setup_instance_logging("rotating", log_file)
    logger.info("before rotation")
    shutdown_logging()  # flush, so the first line is surely in the file we move
    logger = setup_instance_logging("rotating", log_file)
    log_file.rename(rotated)
    logger.info("after rotation")
    shutdown_logging()
    assert rotated.read_text().endswith("before rotation\n")
    assert log_file.read_text().endswith("after rotation\n")
    assert "before" not in log_file.read_text()


def test_reopen_logs_recreates_a_moved_file_at_once(tmp_path: Path) -> None:
    log_file = tmp_path / "ipv6.log"
    setup_instance_logging("reopen", log_file)
    log_file.rename(tmp_path / "ipv6.log.1")
    reopen_logs()
    assert log_file.exists()


def test_setup_twice_replaces_the_first_handler(tmp_path: Path) -> None:
    first = tmp_path / "first.log"
    second = tmp_path / "second.log"
    setup_instance_logging("twice", first)
    logger = setup_instance_logging("twice", second)
    assert not logger.propagate, "the second setup keeps the root logger out too"
    logger.info("only once")
    shutdown_logging()
    assert first.read_text() == ""
    assert second.read_text().count("only once") == 1


def test_xferlog_file_is_appended_and_recreated_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "log" / "xferlog"
    xferlog = XferlogHandler(path, NoReport(), "ftpsup.test")
    assert not path.exists()  # opened lazily
    xferlog.handle(line_record(transfer(path="/one")))
    xferlog.handle(line_record(transfer(path="/two")))
    path.rename(tmp_path / "xferlog.1")
    xferlog.handle(line_record(transfer(path="/three")))
    xferlog.close()
    assert [line.split()[8] for line in (tmp_path / "xferlog.1").read_text().splitlines()] == [
        "/one",
        "/two",
    ]
    assert [line.split()[8] for line in path.read_text().splitlines()] == ["/three"]
    assert path.stat().st_mode & 0o137 == 0


def test_xferlog_reopen_and_close_allow_later_writes(tmp_path: Path) -> None:
    path = tmp_path / "xferlog"
    xferlog = XferlogHandler(path, NoReport(), "ftpsup.test")
    xferlog.handle(line_record(transfer(path="/one")))
    xferlog.reopen()
    xferlog.handle(line_record(transfer(path="/two")))
    xferlog.close()
    xferlog.close()
    xferlog.handle(line_record(transfer(path="/three")))
    xferlog.close()
    assert len(path.read_text().splitlines()) == 3


def test_area_loggers_write_the_instance_log_byte_for_byte(tmp_path: Path) -> None:
    log_file = tmp_path / "areas.log"
    logger = setup_instance_logging("areas", log_file)
    logs = InstanceLogs.of("areas")
    assert logs.main is logger
    assert [lg.name for lg in (logs.control, logs.data, logs.tls, logs.auth)] == [
        "ftpsup.areas.control",
        "ftpsup.areas.data",
        "ftpsup.areas.tls",
        "ftpsup.areas.auth",
    ]
    log_connect(logger, "127.0.0.1")
    log_connect(logs.control, "127.0.0.1")
    log_login(logs.auth, "alice", "127.0.0.1", ok=False)
    shutdown_logging()
    lines = [line.split("] ", 1)[1] for line in log_file.read_text().splitlines()]
    assert lines == [
        'CONNECT: Client "127.0.0.1"',
        'CONNECT: Client "127.0.0.1"',
        '[alice] FAIL LOGIN: Client "127.0.0.1"',
    ]


def test_xferlog_lines_go_to_the_xferlog_only(tmp_path: Path) -> None:
    log_file, xferlog_file = tmp_path / "i.log", tmp_path / "xferlog"
    logger = setup_instance_logging("xfer", log_file, xferlog_file=xferlog_file)
    XferLog("xfer").write(transfer(path="/one"))
    logger.info("an event line")
    shutdown_logging()
    assert xferlog_file.read_text() == xferlog_line(transfer(path="/one")) + "\n"
    assert log_file.read_text().endswith("] an event line\n")
    assert log_file.read_text().count("\n") == 1


def test_reopen_logs_reopens_the_xferlog(tmp_path: Path) -> None:
    xferlog_file = tmp_path / "xferlog"
    setup_instance_logging("rot", tmp_path / "i.log", xferlog_file=xferlog_file)
    XferLog("rot").write(transfer(path="/before"))
    shutdown_logging()
    setup_instance_logging("rot", tmp_path / "i.log", xferlog_file=xferlog_file)
    XferLog("rot").write(transfer(path="/old-file"))
    xferlog_file.rename(tmp_path / "xferlog.1")
    reopen_logs()
    XferLog("rot").write(transfer(path="/new-file"))
    shutdown_logging()
    assert "/new-file" in xferlog_file.read_text()
    assert "/before" in (tmp_path / "xferlog.1").read_text()


def test_a_failing_xferlog_is_reported_once_until_it_works_again(tmp_path: Path) -> None:
    report = NoReport()
    path = tmp_path / "xferlog"
    xferlog = XferlogHandler(Path("/dev/full"), report, "ftpsup.full")
    for n in range(5):
        xferlog.handle(line_record(transfer(path=f"/lost{n}")))
    assert len(report.lines) == 1
    assert re.search(
        r"\] WARNING: xferlog_file /dev/full: No space left on device;", report.lines[0]
    )
    xferlog.path = path  # the disk has room again
    xferlog.handle(line_record(transfer(path="/kept")))
    xferlog.handle(line_record(transfer(path="/kept too")))
    xferlog.close()
    assert len(report.lines) == 2
    assert report.lines[1].endswith(f"xferlog_file {path}: written again")
    assert len(path.read_text().splitlines()) == 2


def test_queued_xferlog_failure_reaches_the_instance_log_once(tmp_path: Path) -> None:
    log_file = tmp_path / "full.log"
    setup_instance_logging("full", log_file, xferlog_file=Path("/dev/full"))
    for n in range(20):
        XferLog("full").write(transfer(path=f"/lost{n}"))
    shutdown_logging()
    assert log_file.read_text().count("No space left on device") == 1


class Seen(logging.Handler):
    """Keeps the records a logger hands to its handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _without_time(line: str) -> str:
    return re.sub(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} ", "", line)


def test_event_lines_skip_the_logging_machinery_and_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "direct.log"
    logger = setup_instance_logging("direct", log_file)
    handled: list[logging.LogRecord] = []
    real_handle = logging.Logger.handle

    def spy(self: logging.Logger, record: logging.LogRecord) -> None:
        handled.append(record)
        real_handle(self, record)

    monkeypatch.setattr(logging.Logger, "handle", spy)
    log_connect(logger.getChild("control"), "192.0.2.7")
    log_login(logger.getChild("auth"), "al]ice\n", "192.0.2.7", ok=True)
    assert handled == [], "an instance's own event lines are queued as finished lines"
    # A logger given another handler takes the ordinary path, to both handlers.
    seen = Seen()
    logger.addHandler(seen)
    log_connect(logger, "192.0.2.7")
    log_login(logger, "al]ice\n", "192.0.2.7", ok=True)
    logger.removeHandler(seen)
    assert len(handled) == 2
    assert len(seen.records) == 2
    shutdown_logging()
    lines = [_without_time(line) for line in log_file.read_text().splitlines()]
    assert lines[:2] == lines[2:]
    assert lines[:2] == [
        f'[pid {os.getpid()}] CONNECT: Client "192.0.2.7"',
        f'[pid {os.getpid()}] [al?ice?] OK LOGIN: Client "192.0.2.7"',
    ]


def test_shutdown_leaves_the_instance_logger_propagating_again(tmp_path: Path) -> None:
    logger = setup_instance_logging("again", tmp_path / "again.log")
    assert not logger.propagate
    shutdown_logging()
    assert logger.propagate
    assert logger.handlers == []
