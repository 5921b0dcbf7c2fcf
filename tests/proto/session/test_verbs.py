"""Every verb of the command table, run through the state machine: its reply codes.

The table below holds at least one case per verb (a test checks it against VERBS, so a new
verb cannot land without one), with the pre-checks every verb shares: 530 before login, 501
for a missing or unwanted argument, 550 for a write without permission, 500 and 502 for
verbs ftpsup does not run.
"""

from __future__ import annotations

import attrs
import pytest

from ftpsup.proto.commands import ALIASES, parse_command
from ftpsup.proto.session.actions import FsCall, FsOp, StartTransfer
from ftpsup.proto.session.table import VERBS
from tests.proto.session.driver import PEER_V4, Driver, make_config


@attrs.frozen
class Case:
    line: str
    codes: list[int]
    setup: tuple[str, ...] = ()
    logged_in: bool = True
    settings: dict[str, object] = attrs.field(factory=dict)

    @property
    def verb(self) -> str:
        return parse_command(self.line.encode()).verb

    def __str__(self) -> str:
        return " / ".join([*self.setup, self.line])


PORT_ARG = PEER_V4.replace(".", ",") + ",200,10"

CASES = [
    Case("USER alice", [331], logged_in=False),
    Case("USER bob", [530]),
    Case("PASS secret", [503], logged_in=False),
    Case("PASS secret", [230]),
    Case("ACCT x", [202]),
    Case("CWD /d", [250]),
    Case("CDUP", [250]),
    Case("REIN", [220]),
    Case("QUIT", [221]),
    Case(f"PORT {PORT_ARG}", [200]),
    Case("PORT 10,0,0,1,200,10", [500]),
    Case("PORT 1,2,3", [501]),
    Case("PORT " + PEER_V4.replace(".", ",") + ",0,21", [500]),
    Case("PASV", [227]),
    Case(f"EPRT |1|{PEER_V4}|51210|", [200]),
    Case("EPRT |1|x|51210|", [501]),
    Case("EPSV", [229]),
    Case("EPSV ALL", [200]),
    Case("EPSV 1", [229]),
    Case("EPSV x", [501]),
    Case("TYPE A", [200]),
    Case("TYPE I", [200]),
    Case("TYPE L 8", [200]),
    Case("TYPE E", [504]),
    Case("STRU F", [200]),
    Case("STRU R", [504]),
    Case("MODE S", [200]),
    Case("MODE B", [504]),
    Case("RETR f", [150], setup=("EPSV",)),
    Case("RETR f", [425]),
    Case("STOR f", [150], setup=("PASV",)),
    Case("STOU", [150], setup=("EPSV",)),
    Case("APPE f", [150], setup=(f"PORT {PORT_ARG}",)),
    Case("ALLO 100", [200]),
    Case("ALLO 100 R 10", [200]),
    Case("ALLO x", [501]),
    Case("REST 100", [350]),
    Case("REST -1", [501]),
    Case("RNFR a", [350]),
    Case("RNTO b", [250], setup=("RNFR a",)),
    Case("RNTO b", [503]),
    Case("ABOR", [225]),
    Case("DELE f", [250]),
    Case("RMD d", [250]),
    Case("MKD d", [257]),
    Case("PWD", [257]),
    Case("XPWD", [257]),
    Case("LIST", [150], setup=("EPSV",)),
    Case("LIST -la /", [150], setup=("EPSV",)),
    Case("NLST", [150], setup=("EPSV",)),
    Case("MLSD", [150], setup=("EPSV",)),
    Case("SITE HELP", [214]),
    Case("SITE FOO", [500]),
    Case("SYST", [215], logged_in=False),
    Case("STAT", [211], logged_in=False),
    Case("STAT /", [213]),
    Case("STAT /", [530], logged_in=False),
    Case("HELP", [214], logged_in=False),
    Case("HELP RETR", [214]),
    Case("NOOP", [200], logged_in=False),
    Case("FEAT", [211], logged_in=False),
    Case("OPTS UTF8 ON", [200], logged_in=False),
    Case("OPTS FOO", [501]),
    Case("SIZE f", [213]),
    Case("MDTM f", [213]),
    Case("MLST f", [250]),
    Case("MLST", [250]),
    Case("AUTH TLS", [502]),
    Case("AUTH TLS", [234], settings={"ssl_enable": True}, logged_in=False),
    Case("PBSZ 0", [503]),
    Case("PROT P", [503]),
    Case("CCC", [533]),
    Case("MFMT 20200101000000 f", [213]),
    Case("MFMT 2020 f", [501]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_verb_replies(case: Case) -> None:
    d = Driver(make_config(**case.settings))
    d.connect()
    if case.logged_in:
        d.login()
    for line in case.setup:
        assert d.send(line).codes[-1] < 400, line
    assert d.send(case.line).codes == case.codes


def test_every_verb_in_the_table_has_a_case() -> None:
    covered = {case.verb for case in CASES}
    assert set(VERBS) - covered == set()
    assert covered - set(VERBS) == set()


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_rfc_775_aliases_run_their_verb(alias: str) -> None:
    d = Driver()
    d.login()
    arg = " /d" if ALIASES[alias] in ("CWD", "MKD", "RMD") else ""
    aliased = d.send(alias + arg)
    assert aliased.replies == d.send(ALIASES[alias] + arg).replies
    assert aliased.codes[0] < 400


def test_verbs_are_matched_in_any_case() -> None:
    d = Driver()
    assert d.send("user alice").codes == [331]
    assert d.send("pAsS right-password").codes == [230]
    assert d.send("pwd").replies == [(257, '"/" is the current directory')]


# -- pre-checks ---------------------------------------------------------------------------


LOGIN_VERBS = sorted(v for v, entry in VERBS.items() if entry.spec.login)


@pytest.mark.parametrize("verb", LOGIN_VERBS)
def test_verbs_that_need_a_login_reply_530_before_it(verb: str) -> None:
    d = Driver()
    answer = d.send(f"{verb} x")
    assert answer.replies == [(530, "Please login with USER and PASS.")]
    # Nothing was asked of the executor.
    assert answer.actions == []


@pytest.mark.parametrize(
    "verb", sorted(v for v, e in VERBS.items() if e.spec.arg.value == "required")
)
def test_a_missing_argument_replies_501_with_the_syntax(verb: str) -> None:
    d = Driver()
    d.login()
    answer = d.send(verb)
    assert answer.code == 501
    assert answer.text == f"Syntax: {VERBS[verb].spec.syntax}"


@pytest.mark.parametrize("verb", ["PWD", "CDUP", "PASV", "ABOR", "SYST", "NOOP", "FEAT", "QUIT"])
def test_an_argument_to_a_verb_that_takes_none_replies_501(verb: str) -> None:
    d = Driver()
    d.login()
    assert d.send(f"{verb} extra").replies == [(501, f"{verb} takes no argument.")]
    assert not d.closing


@pytest.mark.parametrize("verb", sorted(v for v, e in VERBS.items() if e.spec.writes))
def test_write_verbs_reply_550_when_write_enable_is_off(verb: str) -> None:
    d = Driver(make_config(write_enable=False))
    d.login()
    answer = d.send(f"{verb} 20200101000000 f" if verb == "MFMT" else f"{verb} f")
    assert answer.replies == [(550, "Permission denied.")]
    assert answer.actions == []


def test_unknown_verb_replies_500_and_smnt_502() -> None:
    d = Driver()
    d.login()
    assert d.send("FROBNICATE now").replies == [(500, "Unknown command.")]
    assert d.send("SMNT /mnt").replies == [(502, "SMNT not implemented.")]
    assert d.send("NOOP").codes == [200]


def test_an_empty_line_replies_500() -> None:
    d = Driver()
    assert d.send("").replies == [(500, "Empty command.")]
    assert d.send("   ").replies == [(500, "Empty command.")]


def test_an_overlong_line_replies_500_and_the_session_goes_on() -> None:
    d = Driver()
    d.login()
    assert d.line_too_long().replies == [(500, "Command line too long.")]
    assert not d.closing
    assert d.send("PWD").codes == [257]


def test_a_hostile_path_is_refused_with_553_before_any_file_system_call() -> None:
    d = Driver()
    d.login()
    for line in (b"DELE a\x00b", b"MKD " + b"n" * 256, b"SIZE a\rb", b"CWD a\nb"):
        answer = d.send(line)
        assert answer.code == 553, line
        assert answer.of(FsCall) == []


def test_pipelined_commands_are_answered_in_their_order() -> None:
    d = Driver()
    d.login()
    codes = d.run("NOOP", "PWD", "SYST", "TYPE Q", "CWD /", "FROB", "NOOP")
    assert codes == [200, 257, 215, 504, 250, 500, 200]


def test_transfers_ask_the_executor_for_the_resolved_path() -> None:
    d = Driver()
    d.login()
    assert d.send("CWD /pub").codes == [250]
    d.send("EPSV")
    started = d.send("RETR ../etc/./f")
    assert started.of(StartTransfer)[0].path == "/etc/f"
    calls = Driver()
    calls.login()
    assert calls.send("DELE /a/../b").of(FsCall) == [FsCall(FsOp.UNLINK, "/b")]


# Superscript two passes str.isdigit but not int(); Arabic-Indic digits pass both. Numbers are
# ASCII digits only: "REST ²" once raised ValueError (451 and a traceback), "REST ٣" meant 3.
UNICODE_NUMBERS = [
    "REST \u00b2",
    "REST \u0663",
    "REST 1\u00b2",
    "ALLO \u00b2",
    "ALLO \u0663",
    "SITE CHMOD \u0667\u0665\u0665 f",
    "SITE UMASK \u0660\u0662\u0662",
    "EPSV \u00b2",
    "EPSV \u0661",
    "MFMT \u0662\u0660\u0662\u0660\u0660\u0661\u0660\u0661\u0660\u0660\u0660\u0660\u0660\u0660 f",
    f"EPRT |1|{PEER_V4}|\u0665\u0660\u0660\u0660|",
    "REST " + "9" * 30,
    "ALLO " + "9" * 30,
]


@pytest.mark.parametrize("line", UNICODE_NUMBERS)
def test_numbers_in_other_scripts_or_out_of_bounds_are_refused_with_501(line: str) -> None:
    d = Driver()
    d.login()
    answer = d.send(line)
    assert answer.code == 501, answer.replies
    assert answer.actions == []
    assert d.machine.state.rest == 0
    assert d.machine.state.data_setup.value == "none"


def test_smnt_is_502_before_login_too() -> None:
    assert Driver().send("SMNT /mnt").replies == [(502, "SMNT not implemented.")]
