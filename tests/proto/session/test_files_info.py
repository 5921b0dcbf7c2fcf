"""File, directory and informational verbs on the state machine: what they ask of the file
system and how its answers and errors become replies; FEAT per configuration, HELP, OPTS,
STAT, MLST, SITE, ALLO, SIZE, MDTM and MFMT."""

from __future__ import annotations

import errno

import pytest

from ftpsup.proto.facts import FileFacts, FileKind
from ftpsup.proto.replies import Reply
from ftpsup.proto.session.actions import FsCall, FsDone, FsError, FsOp
from ftpsup.proto.session.table import VERBS
from tests.proto.session.driver import MTIME, Driver, logged_in, make_config

ANON = {"anonymous_enable": True, "anon_root": "/srv/anon"}
BASE_FEATURES = {"MDTM", "REST STREAM", "SIZE", "TVFS", "UTF8"}
MLST_ALL = "MLST type*;size*;modify*;perm*;unique*;UNIX.mode*;"


def features(d: Driver) -> list[str]:
    answer = d.send("FEAT")
    assert answer.code == 211
    lines = answer.text.split("\n")
    assert (lines[0], lines[-1]) == ("Features:", "End")
    return lines[1:-1]


# -- FEAT, HELP, OPTS, SYST, STAT, MLST ---------------------------------------------------------


def test_feat_lists_the_default_features_sorted() -> None:
    listed = features(Driver())
    assert listed == sorted(listed)
    assert set(listed) == BASE_FEATURES | {MLST_ALL, "MFMT", "EPSV", "PASV", "EPRT"}


@pytest.mark.parametrize(
    ("settings", "ipv6", "absent", "present"),
    [
        ({}, True, {"PASV"}, {"EPSV", "EPRT"}),
        ({"pasv_enable": False}, False, {"PASV", "EPSV"}, {"EPRT"}),
        ({"port_enable": False}, False, {"EPRT"}, {"PASV", "EPSV"}),
        ({"write_enable": False}, False, {"MFMT"}, set()),
        ({"ssl_enable": True}, False, set(), {"AUTH TLS", "PBSZ", "PROT"}),
        ({"ssl_enable": True, "implicit_ssl": True}, False, {"AUTH TLS"}, {"PBSZ", "PROT"}),
        ({}, False, {"AUTH TLS", "PBSZ", "PROT"}, set()),
    ],
)
def test_feat_follows_the_configuration(
    settings: dict[str, object], ipv6: bool, absent: set[str], present: set[str]
) -> None:
    listed = set(features(Driver(make_config(**settings), ipv6=ipv6)))
    assert not absent & listed
    assert present <= listed
    assert listed >= BASE_FEATURES


def test_feat_after_login_follows_the_sessions_own_write_right() -> None:
    d = Driver(make_config(**ANON, anon_upload_enable=True))
    assert "MFMT" in features(d)
    d.login("anonymous", "guest@example.com")
    assert "MFMT" not in features(d)
    other = Driver(make_config(**ANON, anon_other_write_enable=True))
    other.login("anonymous", "guest@example.com")
    assert "MFMT" in features(other)


def test_feat_on_ipv6_without_writes_leaves_out_pasv_and_mfmt_after_login_too() -> None:
    d = Driver(make_config(write_enable=False), ipv6=True)
    assert not {"PASV", "MFMT"} & set(features(d))
    d.login()
    assert not {"PASV", "MFMT"} & set(features(d))
    # What FEAT left out really does not work here.
    assert d.send("PASV").code == 522
    assert d.send("MFMT 20200101000000 f").code == 550


def test_opts_mlst_selects_facts_and_feat_stars_them() -> None:
    d = logged_in()
    assert d.send("OPTS MLST Size;type;bogus;").replies == [(200, "MLST OPTS size;type;")]
    assert d.machine.state.mlst_facts == ("size", "type")
    assert "MLST type*;size*;modify;perm;unique;UNIX.mode;" in features(d)
    assert d.send("OPTS MLST").replies == [(200, "MLST OPTS ")]
    assert len(d.machine.state.mlst_facts) == 0


@pytest.mark.parametrize("line", ["OPTS UTF8 ON", "OPTS utf8 off", "OPTS UTF8"])
def test_opts_utf8_always_succeeds(line: str) -> None:
    assert Driver().send(line).replies == [(200, "Always in UTF8 mode.")]


def test_opts_of_an_unknown_option_replies_501() -> None:
    assert Driver().send("OPTS MODE Z").replies == [(501, "Option not understood: MODE.")]


def test_help_lists_every_verb_and_explains_one() -> None:
    d = Driver()
    overview = d.send("HELP")
    assert overview.code == 214
    words = set(overview.text.split())
    assert set(VERBS) <= words
    assert d.send("HELP retr").replies == [(214, "Syntax: RETR <sp> pathname")]
    assert d.send("HELP XMKD").replies == [(214, "Syntax: MKD <sp> pathname")]
    assert d.send("HELP FROB").replies == [(502, "Unknown command FROB.")]


def test_syst_and_acct() -> None:
    d = Driver()
    assert d.send("SYST").replies == [(215, "UNIX Type: L8")]
    assert d.send("ACCT x").replies == [(202, "ACCT command superfluous on this server.")]


def test_stat_before_and_after_login() -> None:
    d = Driver(make_config(idle_session_timeout=77))
    before = d.send("STAT").text
    assert "Not logged in" in before
    assert "Session timeout in seconds is 77" in before
    d.login()
    d.send("TYPE A")
    after = d.send("STAT").text
    assert "Logged in as alice" in after
    assert "TYPE: ASCII" in after
    assert after.endswith("End of status")


def test_stat_of_a_path_lists_it_over_the_control_connection() -> None:
    d = logged_in()
    answer = d.then(FsDone(["row one", "row two"])).send("STAT -la /pub")
    assert answer.of(FsCall) == [FsCall(FsOp.STAT_LISTING, "/pub", "la")]
    assert answer.replies == [(213, "Status follows:\nrow one\nrow two\nEnd of status")]
    assert d.then(FsError(errno.ENOENT)).send("STAT /nothing").codes == [550]


def test_mlst_gives_one_fact_line() -> None:
    d = logged_in()
    answer = d.then(FsDone("type=file;size=7; /m.txt")).send("MLST m.txt")
    assert answer.of(FsCall) == [FsCall(FsOp.MLST_LINE, "/m.txt")]
    assert answer.replies == [(250, "Listing /m.txt\ntype=file;size=7; /m.txt\nEnd")]
    # On the wire the fact line is indented by one space (RFC 3659 §7.2).
    last = d.history[-1]
    assert isinstance(last, Reply)
    assert b"\r\n type=file;size=7; /m.txt\r\n" in last.to_bytes()
    assert d.then(FsError(errno.ENOENT)).send("MLST gone").codes == [550]


# -- directories --------------------------------------------------------------------------------


def test_cwd_checks_the_directory_and_pwd_shows_it() -> None:
    d = logged_in()
    answer = d.send("CWD /pub/x")
    assert answer.of(FsCall) == [FsCall(FsOp.IS_DIR, "/pub/x")]
    assert answer.replies == [(250, "Directory successfully changed.")]
    assert d.send("PWD").replies == [(257, '"/pub/x" is the current directory')]
    assert d.send("CDUP").codes == [250]
    assert d.machine.state.cwd == "/pub"


@pytest.mark.parametrize("outcome", [FsDone(False), FsError(errno.ENOENT)])
def test_cwd_to_what_is_not_a_directory_replies_550(outcome: FsDone | FsError) -> None:
    d = logged_in()
    assert d.then(outcome).send("CWD f").replies == [(550, "Failed to change directory.")]
    assert d.machine.state.cwd == "/"


def test_cwd_shows_the_directory_message_when_dirmessage_enable() -> None:
    d = logged_in(dirmessage_enable=True, message_file=".msg")
    answer = d.then(FsDone(True), FsDone(["Welcome", "to pub"])).send("CWD /pub")
    assert answer.of(FsCall)[1] == FsCall(FsOp.READ_MESSAGE, "/pub/.msg")
    assert answer.replies == [(250, "Welcome\nto pub\nDirectory successfully changed.")]


def test_cdup_at_the_root_stays_there() -> None:
    d = logged_in()
    assert d.send("CDUP").of(FsCall) == [FsCall(FsOp.IS_DIR, "/")]


def test_pwd_and_mkd_double_a_quote_in_the_path() -> None:
    d = logged_in()
    made = d.send('MKD a"b')
    assert made.replies == [(257, '"/a""b" created')]
    d.send('CWD a"b')
    assert d.send("PWD").text == '"/a""b" is the current directory'


@pytest.mark.parametrize(
    ("line", "op", "text"),
    [
        ("RMD d", FsOp.RMDIR, "Remove directory operation successful."),
        ("DELE f", FsOp.UNLINK, "Delete operation successful."),
    ],
)
def test_rmd_and_dele(line: str, op: FsOp, text: str) -> None:
    d = logged_in()
    answer = d.send(line)
    assert answer.of(FsCall)[0].op is op
    assert answer.replies == [(250, text)]


@pytest.mark.parametrize(
    ("code", "reply"),
    [
        (errno.ENOSPC, (452, "Insufficient storage space.")),
        (errno.EDQUOT, (452, "Insufficient storage space.")),
        (errno.ENAMETOOLONG, (553, "File name not allowed.")),
        (errno.EINVAL, (553, "File name not allowed.")),
        (errno.ENOENT, (550, "No such file or directory.")),
        (errno.EEXIST, (550, "File exists.")),
        (errno.ENOTEMPTY, (550, "Directory not empty.")),
        (errno.EISDIR, (550, "Is a directory.")),
        (errno.EROFS, (550, "Read-only file system.")),
        (errno.EACCES, (550, "Permission denied.")),
        (errno.ELOOP, (550, "Permission denied.")),
        (errno.EIO, (451, "Local error in processing.")),
        (0, (451, "Local error in processing.")),
    ],
)
def test_file_system_errors_become_replies(code: int, reply: tuple[int, str]) -> None:
    d = logged_in()
    assert d.then(FsError(code)).send("MKD d").replies == [reply]


# -- SIZE, MDTM, MFMT ---------------------------------------------------------------------------


def test_size_in_type_i_and_its_refusal_in_type_a() -> None:
    d = logged_in()
    assert d.send("SIZE f").replies == [(213, "1000")]
    d.send("TYPE A")
    refused = d.send("SIZE f")
    assert refused.replies == [(550, "SIZE not allowed in ASCII mode; use TYPE I.")]
    assert refused.of(FsCall) == []


def test_size_of_a_directory_or_a_missing_file_replies_550() -> None:
    d = logged_in()
    directory = FsDone(FileFacts("d", FileKind.DIR, 4096, MTIME, 0o755))
    assert d.then(directory).send("SIZE d").replies == [(550, "Could not get file size.")]
    assert d.then(FsError(errno.ENOENT)).send("SIZE f").codes == [550]


def test_mdtm_gives_the_time_in_utc() -> None:
    d = logged_in()
    assert d.send("MDTM f").replies == [(213, "20200913122640")]
    assert d.then(FsError(errno.ENOENT)).send("MDTM f").codes == [550]


def test_mfmt_sets_the_time_and_echoes_it() -> None:
    d = logged_in()
    answer = d.send("MFMT 20200913122640 dir/f")
    assert answer.of(FsCall) == [FsCall(FsOp.SET_MTIME, "/dir/f", MTIME)]
    assert answer.replies == [(213, "Modify=20200913122640; /dir/f")]


@pytest.mark.parametrize(
    "arg",
    ["2020 f", "20201301000000 f", "20200230000000 f", "20200101000000", "x" * 14 + " f", "f"],
)
def test_mfmt_with_a_bad_time_or_no_path_replies_501(arg: str) -> None:
    d = logged_in()
    answer = d.send(f"MFMT {arg}")
    assert answer.replies == [(501, "Syntax: MFMT <sp> YYYYMMDDHHMMSS <sp> pathname")]
    assert answer.of(FsCall) == []


# -- SITE, ALLO ---------------------------------------------------------------------------------


def test_site_chmod_changes_the_mode() -> None:
    d = logged_in()
    answer = d.send("SITE CHMOD 640 f")
    assert answer.of(FsCall) == [FsCall(FsOp.CHMOD, "/f", 0o640)]
    assert answer.replies == [(200, "SITE CHMOD command ok.")]


@pytest.mark.parametrize("mode", ["4755", "2755", "1777", "6777", "04755"])
def test_site_chmod_says_it_ignores_setuid_setgid_and_sticky(mode: str) -> None:
    answer = logged_in().send(f"SITE CHMOD {mode} f")
    assert answer.text == "SITE CHMOD command ok; setuid, setgid and sticky bits ignored."


@pytest.mark.parametrize("arg", ["999 f", "755", "x f", "17777 f", "\u0667\u0665\u0665 f", ""])
def test_site_chmod_with_a_bad_mode_or_no_path_replies_501(arg: str) -> None:
    d = logged_in()
    answer = d.send(f"SITE CHMOD {arg}")
    assert answer.replies == [(501, "Syntax: SITE CHMOD <sp> mode <sp> pathname")]


def test_site_chmod_refusals() -> None:
    assert logged_in(chmod_enable=False).send("SITE CHMOD 644 f").code == 502
    assert logged_in(write_enable=False).send("SITE CHMOD 644 f").code == 550
    anon = Driver(make_config(**ANON, anon_other_write_enable=True))
    anon.login("anonymous", "guest@example.com")
    assert anon.send("SITE CHMOD 644 f").code == 550


def test_site_help_offers_chmod_only_when_enabled() -> None:
    assert logged_in().send("SITE HELP").replies == [(214, "CHMOD UMASK HELP")]
    assert logged_in(chmod_enable=False).send("SITE help").replies == [(214, "UMASK HELP")]


def test_site_umask_shows_and_sets_the_mask() -> None:
    d = logged_in(local_umask=0o077)
    assert d.send("SITE UMASK").replies == [(200, "Your current UMASK is 077")]
    answer = d.send("SITE UMASK 027")
    assert answer.of(FsCall) == [FsCall(FsOp.SET_UMASK, "/", 0o027)]
    assert answer.replies == [(200, "UMASK set to 027")]
    assert d.send("SITE UMASK").text == "Your current UMASK is 027"
    assert d.send("SITE UMASK 8").code == 501
    assert d.send("SITE UMASK \u0660\u0662\u0662").code == 501
    assert d.then(FsError(errno.EACCES)).send("SITE UMASK 022").code == 550
    assert d.machine.state.umask == 0o027


def test_allo_checks_the_free_space() -> None:
    d = logged_in()
    fits = d.then(FsDone(1000)).send("ALLO 1000")
    assert fits.of(FsCall) == [FsCall(FsOp.FREE_BYTES, "/")]
    assert fits.replies == [(200, "ALLO command successful.")]
    assert d.then(FsDone(999)).send("ALLO 1000").replies == [(452, "Insufficient storage space.")]
    # Free space unknown: the client may go ahead.
    assert d.then(FsError(errno.EIO)).send("ALLO 1000").codes == [200]


@pytest.mark.parametrize("arg", ["x", "-1", "\u00b2", "\u0663", "9" * 30])
def test_allo_takes_ascii_digits_within_off_t_only(arg: str) -> None:
    answer = logged_in().send(f"ALLO {arg}")
    assert answer.replies == [(501, "Syntax: ALLO <sp> size")]
    assert answer.of(FsCall) == []
