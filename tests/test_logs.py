"""Tests for ftpsup.logs: vsftpd-format lines, fail2ban compatibility, xferlog, rotation."""

from __future__ import annotations

import calendar
import logging
import logging.handlers
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftpsup.logs import (
    TransferRecord,
    VsftpdFormatter,
    XferLog,
    log_command,
    log_connect,
    log_login,
    log_reply,
    log_transfer,
    reopen_logs,
    setup_instance_logging,
    shutdown_logging,
    vsftpd_time,
    xferlog_line,
)

FRI_NOV_27 = float(calendar.timegm((2026, 11, 27, 8, 21, 52, 0, 0, 0)))
SAT_NOV_7 = float(calendar.timegm((2026, 11, 7, 8, 21, 52, 0, 0, 0)))
PID = 1234

# fail2ban's stock filter.d/vsftpd.conf, as its releases spell the vsftpd-log rule:
# 0.9/0.10, and 0.11/1.x (which also names the user).
FAIL2BAN_RULES = [
    r'^ \[pid \d+\] \[[^\]]+\] FAIL LOGIN: Client "<HOST>"(?:\s*$|,)',
    r"^(?:\s*\[pid \d+\] |%(__prefix_line)s)\[<F-USER>[^\]]+</F-USER>\] "
    r'FAIL LOGIN: Client "<HOST>"(?:\s*$|,)',
]
# fail2ban's documented alias for <HOST>.
FAIL2BAN_HOST = r"(?:::f{4,6}:)?(?P<host>\S+)"
# fail2ban cuts the time stamp out of the line before it applies failregex.
VSFTPD_DATE = re.compile(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}")


def fail2ban_regex(rule: str) -> re.Pattern[str]:
    rule = rule.replace("%(__prefix_line)s", r"(?!)")  # the syslog form; not used here
    rule = rule.replace("<F-USER>", "(?P<user>").replace("</F-USER>", ")")
    return re.compile(rule.replace("<HOST>", FAIL2BAN_HOST))


def fail2ban_host(rule: str, line: str) -> str | None:
    match = fail2ban_regex(rule).search(VSFTPD_DATE.sub("", line, count=1))
    return match.group("host") if match else None


@pytest.fixture(autouse=True)
def utc_and_clean_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    shutdown_logging()
    monkeypatch.undo()
    time.tzset()


class RecordList(logging.Handler):
    """Keeps every record it is given, for formatting with fixed time and pid."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        formatter = VsftpdFormatter()
        out = []
        for record in self.records:
            record.created = FRI_NOV_27
            record.process = PID
            out.append(formatter.format(record))
        return out


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, RecordList]]:
    logger = logging.getLogger("ftpsup.test-capture")
    handler = RecordList()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def transfer(**changes: object) -> TransferRecord:
    fields: dict[str, object] = {
        "finished": FRI_NOV_27,
        "seconds": 0.2,
        "remote_host": "127.0.0.1",
        "size": 1024,
        "path": "/srv/a",
        "ascii": False,
        "upload": False,
        "anonymous": False,
        "user": "alice",
        "complete": True,
    }
    fields.update(changes)
    return TransferRecord(**fields)  # type: ignore[arg-type]


def test_time_is_formatted_like_vsftpd() -> None:
    assert vsftpd_time(FRI_NOV_27) == "Fri Nov 27 08:21:52 2026"


def test_single_digit_day_is_space_padded() -> None:
    assert vsftpd_time(SAT_NOV_7) == "Sat Nov  7 08:21:52 2026"


def test_time_of_each_second_is_its_own_even_when_seconds_alternate() -> None:
    # The formatter remembers the last second it formatted; alternating seconds (and a
    # fraction within the same second) must still each get their own text.
    assert [
        vsftpd_time(FRI_NOV_27),
        vsftpd_time(FRI_NOV_27 + 0.9),
        vsftpd_time(FRI_NOV_27 + 1),
        vsftpd_time(FRI_NOV_27),
    ] == [
        "Fri Nov 27 08:21:52 2026",
        "Fri Nov 27 08:21:52 2026",
        "Fri Nov 27 08:21:53 2026",
        "Fri Nov 27 08:21:52 2026",
    ]


def test_connect_line_has_no_user_part(captured: tuple[logging.Logger, RecordList]) -> None:
    logger, handler = captured
    log_connect(logger, "127.0.0.1")
    assert handler.lines() == ['Fri Nov 27 08:21:52 2026 [pid 1234] CONNECT: Client "127.0.0.1"']


@pytest.mark.parametrize(("ok", "word"), [(True, "OK"), (False, "FAIL")])
def test_login_lines_match_vsftpd(
    captured: tuple[logging.Logger, RecordList], ok: bool, word: str
) -> None:
    logger, handler = captured
    log_login(logger, "alice", "::1", ok=ok)
    assert handler.lines() == [
        f'Fri Nov 27 08:21:52 2026 [pid 1234] [alice] {word} LOGIN: Client "::1"'
    ]


def test_transfer_lines_match_vsftpd(captured: tuple[logging.Logger, RecordList]) -> None:
    logger, handler = captured
    log_transfer(
        logger, "alice", "1.2.3.4", upload=False, ok=True, path="/file", size=1234, seconds=0.5
    )
    log_transfer(
        logger, "bob", "1.2.3.4", upload=True, ok=False, path="/up load", size=2048, seconds=2.0
    )
    assert handler.lines() == [
        "Fri Nov 27 08:21:52 2026 [pid 1234] [alice] OK DOWNLOAD: "
        'Client "1.2.3.4", "/file", 1234 bytes, 2.41Kbyte/sec',
        "Fri Nov 27 08:21:52 2026 [pid 1234] [bob] FAIL UPLOAD: "
        'Client "1.2.3.4", "/up load", 2048 bytes, 1.00Kbyte/sec',
    ]


def test_empty_transfer_leaves_out_the_byte_count_like_vsftpd(
    captured: tuple[logging.Logger, RecordList],
) -> None:
    logger, handler = captured
    log_transfer(logger, "alice", "1.2.3.4", upload=True, ok=True, path="/e", size=0, seconds=0)
    assert handler.lines()[0].endswith('OK UPLOAD: Client "1.2.3.4", "/e", 0.00Kbyte/sec')


def test_command_and_reply_lines_are_debug(captured: tuple[logging.Logger, RecordList]) -> None:
    logger, handler = captured
    log_command(logger, None, "127.0.0.1", "USER alice")
    log_reply(logger, "alice", "127.0.0.1", 230, "Login successful.")
    assert [r.levelno for r in handler.records] == [logging.DEBUG, logging.DEBUG]
    assert handler.lines() == [
        'Fri Nov 27 08:21:52 2026 [pid 1234] FTP command: Client "127.0.0.1", "USER alice"',
        "Fri Nov 27 08:21:52 2026 [pid 1234] [alice] FTP response: "
        'Client "127.0.0.1", "230 Login successful."',
    ]


@pytest.mark.parametrize("line", ["PASS s3cret", "pass s3cret", "  Pass s3cret", "PASS"])
def test_pass_argument_is_never_logged(
    captured: tuple[logging.Logger, RecordList], line: str
) -> None:
    logger, handler = captured
    log_command(logger, "alice", "127.0.0.1", line)
    (formatted,) = handler.lines()
    assert "s3cret" not in formatted
    assert formatted.endswith('FTP command: Client "127.0.0.1", "PASS <hidden>"')


def test_passport_like_verbs_are_not_redacted(
    captured: tuple[logging.Logger, RecordList],
) -> None:
    logger, handler = captured
    log_command(logger, "alice", "127.0.0.1", "PASV")
    assert handler.lines()[0].endswith('"PASV"')


def test_warning_and_above_carry_the_level_name(
    captured: tuple[logging.Logger, RecordList],
) -> None:
    logger, handler = captured
    logger.info("started")
    logger.warning("slow disk")
    logger.error("cannot open %s", "/srv")
    assert handler.lines() == [
        "Fri Nov 27 08:21:52 2026 [pid 1234] started",
        "Fri Nov 27 08:21:52 2026 [pid 1234] WARNING: slow disk",
        "Fri Nov 27 08:21:52 2026 [pid 1234] ERROR: cannot open /srv",
    ]


def test_client_text_cannot_start_a_new_line(captured: tuple[logging.Logger, RecordList]) -> None:
    logger, handler = captured
    log_command(
        logger,
        "ev\nil",
        "127.0.0.1",
        'RETR a\r\nFri Nov 27 [pid 1] [x] FAIL LOGIN: Client "9.9.9.9"',
    )
    (formatted,) = handler.lines()
    assert "\n" not in formatted
    assert "\r" not in formatted
    assert "[ev?il]" in formatted


@pytest.mark.parametrize("rule", FAIL2BAN_RULES)
@pytest.mark.parametrize("client", ["127.0.0.1", "::1", "203.0.113.9"])
def test_fail2ban_vsftpd_filter_finds_the_failed_host(
    captured: tuple[logging.Logger, RecordList], rule: str, client: str
) -> None:
    logger, handler = captured
    log_login(logger, "alice", client, ok=False)
    assert fail2ban_host(rule, handler.lines()[0]) == client


@pytest.mark.parametrize("rule", FAIL2BAN_RULES)
def test_fail2ban_vsftpd_filter_ignores_other_lines(
    captured: tuple[logging.Logger, RecordList], rule: str
) -> None:
    logger, handler = captured
    log_login(logger, "alice", "127.0.0.1", ok=True)
    log_connect(logger, "127.0.0.1")
    log_transfer(logger, "alice", "127.0.0.1", upload=True, ok=False, path="/x", size=1, seconds=1)
    log_command(logger, "alice", "127.0.0.1", 'USER x] FAIL LOGIN: Client "10.0.0.1"')
    assert [fail2ban_host(rule, line) for line in handler.lines()] == [None] * 4


@pytest.mark.parametrize("rule", FAIL2BAN_RULES)
def test_user_name_cannot_make_fail2ban_ban_another_host(
    captured: tuple[logging.Logger, RecordList], rule: str
) -> None:
    logger, handler = captured
    log_login(logger, 'x] FAIL LOGIN: Client "10.0.0.1", ', "203.0.113.9", ok=False)
    assert fail2ban_host(rule, handler.lines()[0]) == "203.0.113.9"


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
    logger.info("only once")
    shutdown_logging()
    assert first.read_text() == ""
    assert second.read_text().count("only once") == 1


def test_xferlog_line_matches_wu_ftpd_format() -> None:
    line = xferlog_line(transfer())
    assert line == "Fri Nov 27 08:21:52 2026 1 127.0.0.1 1024 /srv/a b _ o r alice ftp 0 * c"


def test_xferlog_fields_follow_the_record() -> None:
    line = xferlog_line(
        transfer(
            finished=SAT_NOV_7,
            seconds=7.4,
            remote_host="::1",
            size=5,
            path="/pub/my file.txt",
            ascii=True,
            upload=True,
            anonymous=True,
            user="guest@example.org",
            complete=False,
        )
    )
    fields = line.split()
    assert len(fields) == 18
    assert fields[:5] == ["Sat", "Nov", "7", "08:21:52", "2026"]
    assert fields[5:] == [
        "7",
        "::1",
        "5",
        "/pub/my_file.txt",
        "a",
        "_",
        "i",
        "a",
        "guest@example.org",
        "ftp",
        "0",
        "*",
        "i",
    ]


@pytest.mark.parametrize(
    ("path", "user"), [("/a b\tc", "alice"), ("/new\nline", "x y"), ("/ok", " ")]
)
def test_xferlog_line_always_has_18_fields(path: str, user: str) -> None:
    line = xferlog_line(transfer(path=path, user=user))
    assert "\n" not in line
    assert len(line.split()) == 18


def test_xferlog_file_is_appended_and_recreated_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "log" / "xferlog"
    xferlog = XferLog(path)
    assert not path.exists()  # opened lazily
    xferlog.write(transfer(path="/one"))
    xferlog.write(transfer(path="/two"))
    path.rename(tmp_path / "xferlog.1")
    xferlog.write(transfer(path="/three"))
    xferlog.close()
    assert [line.split()[8] for line in (tmp_path / "xferlog.1").read_text().splitlines()] == [
        "/one",
        "/two",
    ]
    assert [line.split()[8] for line in path.read_text().splitlines()] == ["/three"]
    assert path.stat().st_mode & 0o137 == 0


def test_xferlog_reopen_and_close_allow_later_writes(tmp_path: Path) -> None:
    path = tmp_path / "xferlog"
    xferlog = XferLog(path)
    xferlog.write(transfer(path="/one"))
    xferlog.reopen()
    xferlog.write(transfer(path="/two"))
    xferlog.close()
    xferlog.close()
    xferlog.write(transfer(path="/three"))
    xferlog.close()
    assert len(path.read_text().splitlines()) == 3


_LINE_START = re.compile(r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \[pid (\d+)\] ")


def _events(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        match = _LINE_START.match(line)
        assert match is not None, line
        assert int(match[1]) == os.getpid()
        out.append(line[match.end() :])
    return out


def test_instance_event_lines_skip_log_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CONNECT, LOGIN and transfer lines are most of a busy instance's log: on the instance's
    # own logger they are formatted and queued directly, with the very same text.
    made: list[str] = []
    real = logging.Logger.makeRecord

    def counting(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(str(args[4]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(logging.Logger, "makeRecord", counting)
    log_file = tmp_path / "direct.log"
    logger = setup_instance_logging("direct", log_file)
    log_connect(logger, "127.0.0.1")
    log_login(logger, "al]ice\n", "::1", ok=True)
    log_transfer(logger, "bob", "1.2.3.4", upload=False, ok=True, path="/f", size=1234, seconds=0.5)
    logger.warning("between")
    log_login(logger, "eve", "203.0.113.9", ok=False)
    shutdown_logging()
    assert made == ["between"]
    assert _events(log_file) == [
        'CONNECT: Client "127.0.0.1"',
        '[al?ice?] OK LOGIN: Client "::1"',
        '[bob] OK DOWNLOAD: Client "1.2.3.4", "/f", 1234 bytes, 2.41Kbyte/sec',
        "WARNING: between",
        '[eve] FAIL LOGIN: Client "203.0.113.9"',
    ]


def test_an_instance_logger_given_another_handler_still_gives_it_records(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "both.log"
    logger = setup_instance_logging("both", log_file)
    extra = RecordList()
    logger.addHandler(extra)
    try:
        log_login(logger, "alice", "10.0.0.1", ok=False)
    finally:
        logger.removeHandler(extra)
    shutdown_logging()
    assert extra.lines() == [
        'Fri Nov 27 08:21:52 2026 [pid 1234] [alice] FAIL LOGIN: Client "10.0.0.1"'
    ]
    assert _events(log_file) == ['[alice] FAIL LOGIN: Client "10.0.0.1"']
