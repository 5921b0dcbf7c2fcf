"""A bounded fuzz run against live instances, and the pure parts of the fuzzer.

Rules:
- Randomised sessions (hostile arguments to real verbs, raw bytes, TLS upgrades cut short,
  broken data connections; see fuzz_sessions.py) leave no traceback in the instance logs or
  on their standard error, the instance running, a fresh client served (greeting, login,
  LIST, QUIT), a clean stop, every reply and listing line well framed, and every file the
  fuzzer named inside the user's home.
- The run is bounded by a session count, and by time should it stall. The seed is fixed
  so a failure replays; FTPSUP_FUZZ_SEED picks another (a number, or "random"), and the
  failure message names the seed. A long run of the same driver is a release check (see
  docs/development.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration import fuzz_inputs
from tests.integration.fuzz_checks import distinct_tracebacks, stderr_problems, traceback_excerpts
from tests.integration.fuzz_driver import fuzz, seed_from_env
from tests.integration.fuzz_wire import broken_listing_lines
from tests.integration.servers import Server

# The suite's run is bounded by its session count: a fixed seed and a fixed count replay the
# same run on a busy machine as on an idle one. The time bound only stops a run that stalls.
# The long run is a release check (docs/development.md).
FUZZ_SECONDS = 60
FUZZ_SESSIONS = 60


def test_fuzzed_sessions_leave_no_traceback_and_the_instances_serving(
    server_factory: Callable[..., Server], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    seed = seed_from_env()
    verdict = fuzz(
        server_factory, tmp_path, seed=seed, seconds=FUZZ_SECONDS, max_sessions=FUZZ_SESSIONS
    )
    # The instances write to the test's standard error (captured at the descriptor).
    stderr = capfd.readouterr().err
    print(verdict.report(transcript=0))
    assert verdict.ok, verdict.report()
    assert stderr_problems(stderr) == [], f"seed {seed}: instances' standard error:\n{stderr}"
    # The run got past the login and moved data, so it reached the commands behind them.
    assert verdict.stats.logins > 0, verdict.report()
    assert verdict.stats.completed > 0, verdict.report()


def test_one_seed_gives_the_same_hostile_commands() -> None:
    def lines(seed: int) -> list[bytes]:
        rng = random.Random(seed)
        known = fuzz_inputs.home_names()
        return [fuzz_inputs.command(rng, v6=False, own_port=40000, known=known) for _ in range(500)]

    assert lines(7) == lines(7)
    assert lines(7) != lines(8)


def test_write_paths_always_end_in_a_fuzz_name() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        last = fuzz_inputs.write_path(rng).rsplit(b"/", 1)[-1]
        assert last.startswith(fuzz_inputs.NAME_PREFIX.encode()), last


def test_verbs_that_change_things_never_name_a_link_to_outside_the_home() -> None:
    rng = random.Random(4)
    known = [*fuzz_inputs.home_names(), *fuzz_inputs.LINK_NAMES, "etc-link/passwd"]
    for _ in range(3000):
        line = fuzz_inputs.command(rng, v6=False, own_port=40000, known=known)
        verb = line.lstrip(b" \xff\xf4\xf2").split(b" ", 1)[0].upper()
        if verb in (b"MFMT", b"SITE", b"DELE", b"RMD", b"RNFR", b"RNTO", b"STOR", b"APPE"):
            assert b"etc-link" not in line, line
            assert b"up-link" not in line, line


LOG = """\
Sun Dec  6 06:00:00 2026 [pid 1] [alice] FTP command: Client "127.0.0.1", "REST ²"
Sun Dec  6 06:00:00 2026 [pid 1] ERROR: command from 127.0.0.1 failed
Traceback (most recent call last):
  File "/x/control.py", line 160, in _command_loop
    await _dispatch(s, item)
  File "/x/handlers_data.py", line 185, in cmd_rest
    s.rest = int(arg)
             ^^^^^^^^
ValueError: invalid literal for int() with base 10: '²'
Sun Dec  6 06:00:01 2026 [pid 1] [alice] FTP command: Client "127.0.0.1", "NOOP"
"""


def test_traceback_excerpts_keep_the_command_before_and_the_exception_line() -> None:
    excerpts = traceback_excerpts(LOG + LOG.replace("06:00:00", "06:00:05"))
    assert len(excerpts) == 2
    assert excerpts[0].splitlines()[0].endswith('"REST ²"')
    assert excerpts[0].splitlines()[-1].startswith("ValueError: invalid literal")
    assert "NOOP" not in excerpts[0]
    assert len(distinct_tracebacks(excerpts)) == 1


def test_a_clean_log_has_no_traceback_excerpt() -> None:
    assert traceback_excerpts(LOG.replace("Traceback", "Trace")) == []


def test_a_listing_line_split_by_a_name_with_a_line_end_is_an_anomaly() -> None:
    assert broken_listing_lines(b"a\r\nb\r\n") == []
    listing = b"a\r\nline\nfeed\r\ncarriage\rreturn\r\n"
    assert broken_listing_lines(listing) == [b"line\nfeed", b"carriage\rreturn"]


def test_standard_error_problems_are_tracebacks_and_ignored_exceptions() -> None:
    assert stderr_problems("ftpsup: user 'alice' added\n") == []
    text = "Exception ignored in: <socket>\nResourceWarning: unclosed\n" + LOG
    found = stderr_problems(text)
    assert found[0].startswith("Traceback")
    assert found[0].endswith("'²'")
    assert found[1] == "Exception ignored in: <socket>"
