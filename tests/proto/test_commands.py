"""Unit tests of ftpsup.proto.commands: parsing, the pre-check order, HELP, FEAT, log safety."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.commands import (
    ALIASES,
    HTTP_VERBS,
    Arg,
    Command,
    feature_lines,
    help_reply,
    parse_command,
    precheck,
)

# -- parse_command --------------------------------------------------------------------------
from ftpsup.proto.replies import Reply
from ftpsup.proto.session.table import SPECS as COMMANDS


def _precheck(cmd: Command, *, logged_in: bool, may_write: bool) -> Reply | None:
    return precheck(cmd, COMMANDS.get(cmd.verb), logged_in=logged_in, may_write=may_write)


@pytest.mark.parametrize("line", [b"retr a", b"RETR a", b"Retr a", b"rEtR a"])
def test_verb_is_matched_case_insensitively(line: bytes) -> None:
    assert parse_command(line) == Command("RETR", "a")


def test_argument_keeps_its_case() -> None:
    assert parse_command(b"stor MiXeD.TXT").arg == "MiXeD.TXT"


@pytest.mark.parametrize(("alias", "verb"), sorted(ALIASES.items()))
def test_rfc_775_alias_becomes_its_rfc_959_verb(alias: str, verb: str) -> None:
    assert parse_command(f"{alias.lower()} dir".encode()) == Command(verb, "dir")


def test_every_alias_names_a_known_verb() -> None:
    assert set(ALIASES.values()) <= set(COMMANDS)


def test_argument_with_spaces_is_kept_whole() -> None:
    assert parse_command(b"RETR my file  name.txt").arg == "my file  name.txt"


def test_trailing_and_leading_spaces_of_the_argument_survive() -> None:
    assert parse_command(b"STOR  name ").arg == " name "


def test_password_with_spaces_is_the_whole_rest_of_the_line() -> None:
    assert parse_command(b"PASS wonder land").arg == "wonder land"


def test_leading_spaces_before_the_verb_are_ignored() -> None:
    assert parse_command(b"   NOOP") == Command("NOOP", "")


def test_verb_without_argument_has_empty_argument() -> None:
    assert parse_command(b"PWD") == Command("PWD", "")


def test_empty_line_gives_empty_verb() -> None:
    assert parse_command(b"") == Command("", "")


def test_non_utf8_bytes_survive_as_surrogate_escapes() -> None:
    cmd = parse_command(b"RETR caf\xe9 \xff.txt")
    assert cmd.verb == "RETR"
    assert cmd.arg.encode("utf-8", "surrogateescape") == b"caf\xe9 \xff.txt"


def test_utf8_argument_is_decoded() -> None:
    assert parse_command("MKD Grüße".encode()).arg == "Grüße"


def test_unknown_verb_is_kept_as_sent_in_upper_case() -> None:
    assert parse_command(b"frob x") == Command("FROB", "x")


@given(st.binary(max_size=300))
def test_parse_command_never_raises_on_arbitrary_bytes(line: bytes) -> None:
    cmd = parse_command(line)
    assert isinstance(cmd.verb, str)
    assert " " not in cmd.verb


@given(st.binary(max_size=300))
def test_argument_bytes_round_trip_for_any_line(line: bytes) -> None:
    cmd = parse_command(line)
    stripped = line.lstrip(b" ")
    if b" " in stripped:
        assert cmd.arg.encode("utf-8", "surrogateescape") == stripped.split(b" ", 1)[1]
    else:
        assert cmd.arg == ""


# -- precheck: 500, 530, 501, 550 in that order ---------------------------------------------


def _code(line: bytes, *, logged_in: bool, may_write: bool = True) -> int | None:
    refusal = _precheck(parse_command(line), logged_in=logged_in, may_write=may_write)
    return None if refusal is None else refusal.code


def test_unknown_verb_replies_500_even_before_login() -> None:
    assert _code(b"FROB", logged_in=False, may_write=False) == 500


@pytest.mark.parametrize("logged_in", [False, True])
def test_smnt_replies_502_not_implemented(logged_in: bool) -> None:
    # RFC 959 §4.2: 502 for a command the server knows but does not implement; 500 would say
    # it is not FTP at all.
    assert _code(b"SMNT /mnt", logged_in=logged_in, may_write=True) == 502


def test_unknown_verb_replies_500_when_logged_in() -> None:
    assert _code(b"FROB x", logged_in=True) == 500


def test_login_verb_before_login_replies_530() -> None:
    assert _code(b"RETR a", logged_in=False) == 530


def test_530_comes_before_the_argument_check() -> None:
    assert _code(b"RETR", logged_in=False) == 530


def test_530_comes_before_the_permission_check() -> None:
    assert _code(b"STOR a", logged_in=False, may_write=False) == 530


def test_missing_required_argument_replies_501() -> None:
    assert _code(b"RETR", logged_in=True) == 501


def test_blank_required_argument_replies_501() -> None:
    assert _code(b"RETR    ", logged_in=True) == 501


def test_501_names_the_syntax() -> None:
    refusal = _precheck(Command("RNFR", ""), logged_in=True, may_write=True)
    assert refusal is not None
    assert "RNFR <sp> pathname" in refusal.lines[0]


def test_argument_to_a_verb_that_takes_none_replies_501() -> None:
    assert _code(b"PASV now", logged_in=True) == 501


def test_501_comes_before_the_permission_check() -> None:
    assert _code(b"STOR", logged_in=True, may_write=False) == 501


def test_write_verb_without_permission_replies_550() -> None:
    assert _code(b"DELE a", logged_in=True, may_write=False) == 550


@pytest.mark.parametrize("verb", sorted(v for v, spec in COMMANDS.items() if spec.writes))
def test_every_write_verb_is_refused_without_permission(verb: str) -> None:
    refusal = _precheck(Command(verb, "x y"), logged_in=True, may_write=False)
    assert refusal is not None
    assert refusal.code == 550


@pytest.mark.parametrize(
    "verb", ["RETR", "LIST", "NLST", "MLSD", "CWD", "SIZE", "MDTM", "PWD", "PASV", "SITE"]
)
def test_read_verbs_pass_without_write_permission(verb: str) -> None:
    spec = COMMANDS[verb]
    arg = "x" if spec.arg is Arg.REQUIRED else ""
    assert _precheck(Command(verb, arg), logged_in=True, may_write=False) is None


@pytest.mark.parametrize("verb", sorted(v for v, spec in COMMANDS.items() if not spec.login))
def test_verbs_without_login_pass_before_login(verb: str) -> None:
    arg = "x" if COMMANDS[verb].arg is Arg.REQUIRED else ""
    assert _precheck(Command(verb, arg), logged_in=False, may_write=False) is None


def test_optional_argument_may_be_given_or_not() -> None:
    assert _precheck(Command("LIST", ""), logged_in=True, may_write=False) is None
    assert _precheck(Command("LIST", "-la /a"), logged_in=True, may_write=False) is None


def test_user_and_pass_need_no_login() -> None:
    assert not COMMANDS["USER"].login
    assert not COMMANDS["PASS"].login


# -- the table -----------------------------------------------------------------------------


def test_table_keys_match_spec_verbs() -> None:
    assert all(spec.verb == verb for verb, spec in COMMANDS.items())


def test_only_abor_stat_quit_and_noop_run_during_a_transfer() -> None:
    during = {verb for verb, spec in COMMANDS.items() if spec.during_transfer}
    assert during == {"ABOR", "STAT", "QUIT", "NOOP"}


def test_http_verbs_are_not_ftp_verbs() -> None:
    assert HTTP_VERBS.isdisjoint(COMMANDS)


# -- HELP ----------------------------------------------------------------------------------


def test_help_without_topic_lists_every_verb() -> None:
    answer = help_reply("", COMMANDS)
    assert answer.code == 214
    words = {word for line in answer.lines[1:-1] for word in line.split()}
    assert words == set(COMMANDS)


def test_help_lines_after_the_first_never_start_with_a_digit() -> None:
    data = help_reply("", COMMANDS).to_bytes()
    assert data.startswith(b"214-")
    assert data.endswith(b"214 Help OK.\r\n")
    assert data.count(b"\r\n214 ") == 1


@pytest.mark.parametrize("topic", ["stor", "STOR", " Stor "])
def test_help_on_a_verb_gives_its_syntax(topic: str) -> None:
    answer = help_reply(topic, COMMANDS)
    assert answer.code == 214
    assert answer.lines == ("Syntax: STOR <sp> pathname",)


def test_help_on_an_alias_gives_the_verb_syntax() -> None:
    assert help_reply("XMKD", COMMANDS).lines == ("Syntax: MKD <sp> pathname",)


def test_help_on_an_unknown_verb_replies_502() -> None:
    answer = help_reply("frob", COMMANDS)
    assert answer.code == 502
    assert "FROB" in answer.lines[0]


# -- FEAT ----------------------------------------------------------------------------------


def test_feat_lists_passive_and_active_features_when_enabled() -> None:
    lines = feature_lines(
        pasv_enable=True, port_enable=True, mlst_facts="type*;size*;", ipv6=False, mfmt=True
    )
    assert {"EPSV", "PASV", "EPRT", "MLST type*;size*;", "SIZE", "UTF8"} <= set(lines)
    assert lines == sorted(lines)


def test_feat_leaves_out_passive_when_pasv_is_disabled() -> None:
    lines = feature_lines(
        pasv_enable=False, port_enable=True, mlst_facts="type*;", ipv6=False, mfmt=True
    )
    assert "PASV" not in lines
    assert "EPSV" not in lines
    assert "EPRT" in lines


def test_feat_leaves_out_eprt_when_port_is_disabled() -> None:
    lines = feature_lines(
        pasv_enable=True, port_enable=False, mlst_facts="type*;", ipv6=False, mfmt=True
    )
    assert "EPRT" not in lines
    assert "EPSV" in lines


def test_feat_on_ipv6_lists_epsv_but_not_pasv() -> None:
    # PASV always answers 522 on an IPv6 connection (RFC 2428 §2): FEAT must not offer it.
    lines = feature_lines(
        pasv_enable=True, port_enable=True, mlst_facts="type*;", ipv6=True, mfmt=True
    )
    assert "PASV" not in lines
    assert {"EPSV", "EPRT"} <= set(lines)


def test_feat_leaves_out_mfmt_when_writes_are_off() -> None:
    lines = feature_lines(
        pasv_enable=True, port_enable=True, mlst_facts="type*;", ipv6=False, mfmt=False
    )
    assert "MFMT" not in lines
    assert {"MDTM", "SIZE"} <= set(lines)


def test_feat_lists_mfmt_when_writes_are_on() -> None:
    lines = feature_lines(
        pasv_enable=True, port_enable=True, mlst_facts="type*;", ipv6=True, mfmt=True
    )
    assert "MFMT" in lines


# -- loggable ------------------------------------------------------------------------------


def test_loggable_hides_the_password() -> None:
    text = parse_command(b"pass s3cret words").loggable()
    assert "s3cret" not in text
    assert text == "PASS <hidden>"


def test_loggable_hides_an_empty_password_too() -> None:
    assert Command("PASS", "").loggable() == "PASS <hidden>"


def test_loggable_shows_other_commands_whole() -> None:
    assert Command("RETR", "a b.txt").loggable() == "RETR a b.txt"


def test_loggable_of_a_verb_without_argument_has_no_trailing_space() -> None:
    assert Command("PWD", "").loggable() == "PWD"


@given(st.text(max_size=100))
def test_loggable_never_contains_any_password(password: str) -> None:
    line = b"PASS " + password.encode("utf-8", "surrogatepass")
    cmd = parse_command(line)
    assert cmd.loggable() == "PASS <hidden>"
