"""Login and the session's life on the state machine: USER/PASS, anonymous, failures, limits,
HTTP requests, REIN, QUIT, timeouts and the greeting."""

from __future__ import annotations

import pytest

from ftpsup.proto.replies import Reply
from ftpsup.proto.session.actions import (
    Authenticate,
    ClosePassive,
    DiscardTransfer,
    HomeUnavailable,
    LoggedIn,
    LoginDone,
    LoginFailed,
    LoginRejected,
    Logout,
    OpenPassive,
    Pause,
)
from ftpsup.proto.session.machine import MAX_UNKNOWN_BEFORE_LOGIN
from ftpsup.proto.session.state import DataSetup
from tests.proto.session.driver import BANNER, PASSWORD, USER, Driver, make_config

ANON = {"anonymous_enable": True, "anon_root": "/srv/anon"}


def test_greeting_is_220_with_the_banner() -> None:
    d = Driver()
    assert d.connect("Welcome.").replies == [(220, "Welcome.")]
    assert not d.machine.busy


def test_a_local_login_asks_the_executor_then_replies_230() -> None:
    d = Driver(make_config(local_umask=0o027))
    assert d.send(f"USER {USER}").replies == [(331, "Please specify the password.")]
    done = d.send(f"PASS {PASSWORD}")
    assert done.kinds() == [Authenticate, LoginDone, 230]
    assert done.of(Authenticate) == [Authenticate(USER, PASSWORD, False, 0o027)]
    assert done.of(LoginDone) == [LoginDone(USER)]
    assert d.machine.state.user == USER
    assert d.send("PWD").codes == [257]


def test_a_wrong_password_fails_after_the_pause_and_allows_another_try() -> None:
    d = Driver(make_config(delay_failed_login=3))
    d.send(f"USER {USER}")
    failed = d.send("PASS wrong")
    assert failed.kinds() == [Authenticate, LoginFailed, Pause, 530]
    assert failed.of(Pause) == [Pause(3)]
    assert failed.replies == [(530, "Login incorrect.")]
    assert not d.closing
    assert d.send("PWD").codes == [530]
    d.login()


def test_the_530_for_a_failed_login_waits_for_the_pause() -> None:
    d = Driver()
    d.send(f"USER {USER}")
    d.start("PASS wrong")
    assert d.resume(LoginRejected()).kinds() == [LoginFailed, Pause]
    assert d.machine.waiting == Pause(1)
    assert d.finish().codes == [530]


def test_max_login_fails_closes_the_connection_after_the_last_530() -> None:
    d = Driver(make_config(max_login_fails=2))
    d.send(f"USER {USER}")
    assert d.send("PASS wrong").codes == [530]
    assert not d.closing
    assert d.send("NOOP").codes == [200]
    d.send(f"USER {USER}")
    assert d.send("PASS wrong-again").codes == [530]
    assert d.closing


def test_the_password_reaches_no_log_item() -> None:
    d = Driver()
    d.send(f"USER {USER}")
    d.send("PASS wrong-secret-7Qx")
    d.login()
    logged = [str(item) for item in d.history if not isinstance(item, Authenticate)]
    assert not [line for line in logged if "wrong-secret-7Qx" in line or PASSWORD in line]


def test_home_unavailable_replies_530_without_counting_a_failure() -> None:
    d = Driver(make_config(max_login_fails=1))
    d.send(f"USER {USER}")
    answer = d.then(HomeUnavailable()).send(f"PASS {PASSWORD}")
    assert answer.replies == [(530, "Login failed: home directory unavailable.")]
    assert answer.of(LoginFailed) == []
    assert answer.of(Pause) == []
    assert not d.closing
    assert d.send("PASS again").codes == [503]


def test_pass_without_user_replies_503() -> None:
    d = Driver()
    assert d.send(f"PASS {PASSWORD}").replies == [(503, "Login with USER first.")]
    assert d.send("PWD").codes == [530]


def test_pass_when_logged_in_replies_230_and_user_530() -> None:
    d = Driver()
    d.login()
    assert d.send("PASS anything").replies == [(230, "Already logged in.")]
    assert d.send("USER bob").replies == [(530, "Can't change to another user.")]
    assert d.machine.state.user == USER


def test_local_enable_false_refuses_local_logins_without_asking() -> None:
    d = Driver(make_config(local_enable=False))
    assert d.send(f"USER {USER}").codes == [331]
    failed = d.send(f"PASS {PASSWORD}")
    assert failed.codes == [530]
    assert failed.of(Authenticate) == []


@pytest.mark.parametrize("name", ["anonymous", "ftp", "Anonymous", "FTP"])
def test_anonymous_login_with_an_address_as_password(name: str) -> None:
    d = Driver(make_config(**ANON, anon_umask=0o022))
    assert d.send(f"USER {name}").codes == [331]
    done = d.send("PASS guest@example.com")
    assert done.codes == [230]
    assert done.of(Authenticate) == [Authenticate("anonymous", "guest@example.com", True, 0o022)]
    assert d.machine.state.anonymous


def test_anonymous_is_refused_at_user_when_anonymous_enable_is_off() -> None:
    d = Driver(make_config(anon_root="/srv/anon"))
    refused = d.send("USER anonymous")
    assert refused.replies == [(530, "Anonymous login is not allowed on this server.")]
    assert d.send("PASS x").codes == [503]


def test_anonymous_needs_a_password_unless_no_anon_password() -> None:
    strict = Driver(make_config(**ANON))
    strict.send("USER anonymous")
    failed = strict.send("PASS")
    assert failed.codes == [530]
    assert failed.of(Authenticate) == []
    relaxed = Driver(make_config(**ANON, no_anon_password=True))
    relaxed.send("USER anonymous")
    assert relaxed.send("PASS").codes == [230]


def test_anonymous_without_anon_root_fails() -> None:
    d = Driver(make_config(anonymous_enable=True))
    assert d.send("USER ftp").codes == [331]
    failed = d.send("PASS guest@example.com")
    assert failed.codes == [530]
    assert failed.of(Authenticate) == []


@pytest.mark.parametrize(
    ("settings", "verb", "code"),
    [
        ({"anon_upload_enable": True}, "STOR f", 425),
        ({"anon_upload_enable": True}, "MKD d", 550),
        ({"anon_mkdir_write_enable": True}, "MKD d", 257),
        ({"anon_mkdir_write_enable": True}, "DELE f", 550),
        ({"anon_other_write_enable": True}, "DELE f", 250),
        ({"anon_other_write_enable": True}, "APPE f", 550),
        ({"anon_upload_enable": True, "write_enable": False}, "STOR f", 550),
    ],
)
def test_anonymous_writes_follow_the_anon_keys(
    settings: dict[str, object], verb: str, code: int
) -> None:
    d = Driver(make_config(**{**ANON, **settings}))
    d.login("anonymous", "guest@example.com")
    # 425 (no data connection set up) means the write permission check passed.
    assert d.send(verb).codes == [code]


def test_a_local_user_without_write_right_is_refused_writes() -> None:
    d = Driver()
    d.answer(Authenticate, LoggedIn(may_write=False))
    d.login()
    assert d.send("DELE f").codes == [550]
    assert d.send("SIZE f").codes == [213]


# -- unknown commands, HTTP ---------------------------------------------------------------


def test_unknown_commands_before_login_close_at_the_tenth() -> None:
    d = Driver()
    for _ in range(MAX_UNKNOWN_BEFORE_LOGIN - 1):
        assert d.send("FROB").codes == [500]
    assert not d.closing
    last = d.send("FROB")
    assert last.replies == [(500, "Unknown command."), (421, "Too many unknown commands; closing.")]
    assert d.closing


def test_known_commands_and_a_login_do_not_count_as_unknown() -> None:
    d = Driver()
    for _ in range(MAX_UNKNOWN_BEFORE_LOGIN - 1):
        d.send("FROB")
        d.send("NOOP")
    d.login()
    for _ in range(MAX_UNKNOWN_BEFORE_LOGIN + 1):
        assert d.send("FROB").codes == [500]
    assert not d.closing


@pytest.mark.parametrize("verb", ["GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS"])
def test_an_http_request_before_login_gets_421_and_the_end(verb: str) -> None:
    d = Driver()
    answer = d.send(f"{verb} / HTTP/1.1")
    assert answer.replies == [(421, "HTTP protocol commands not allowed.")]
    assert d.closing


def test_an_http_verb_after_login_is_just_unknown() -> None:
    d = Driver()
    d.login()
    assert d.send("GET /").codes == [500]
    assert not d.closing


# -- REIN, QUIT, timeouts, internal errors --------------------------------------------------


def test_rein_logs_out_and_resets_the_session() -> None:
    d = Driver()
    d.login()
    d.run("TYPE A", "REST 10", "EPSV ALL", "EPSV", "CWD /d", "RNFR a")
    answer = d.send("REIN")
    assert answer.kinds() == [ClosePassive, Logout, 220]
    st = d.machine.state
    assert (st.user, st.cwd, st.ascii, st.rest, st.epsv_all) == (None, "/", False, 0, False)
    assert d.send("PWD").codes == [530]
    d.login()
    assert d.send("RNTO b").codes == [503]


def test_quit_replies_221_and_ends_the_session() -> None:
    d = Driver()
    assert d.send("QUIT").replies == [(221, "Goodbye.")]
    assert d.closing


def test_login_timeout_and_idle_timeout_have_their_own_words() -> None:
    login = Driver(make_config(login_timeout=42))
    assert login.timed_out(login=True).replies == [
        (421, "Login timeout (42 seconds): closing control connection.")
    ]
    assert login.closing
    idle = Driver()
    idle.login()
    assert idle.timed_out(login=False).replies == [(421, "Timeout.")]
    assert idle.closing


def test_an_internal_error_replies_451_and_the_session_serves_on() -> None:
    d = Driver()
    d.login()
    d.start("DELE f")
    assert d.machine.busy
    error = d.machine.internal_error()
    assert [(r.code, r.lines) for r in error if isinstance(r, Reply)] == [
        (451, ("Internal error; the command was not completed.",))
    ]
    # What the failed command may have opened for a transfer is closed.
    assert DiscardTransfer() in error
    assert d.machine.waiting is None
    assert not d.machine.busy
    assert d.send("NOOP").codes == [200]


def test_an_internal_error_while_a_passive_port_opens_closes_it() -> None:
    d = Driver()
    d.login()
    d.start("PASV")
    assert d.machine.waiting == OpenPassive()
    error = d.machine.internal_error()
    # The executor may hold a port the client never heard of: it goes.
    assert ClosePassive() in error
    assert d.machine.state.data_setup is DataSetup.NONE


def test_an_internal_error_keeps_the_passive_port_the_client_was_given() -> None:
    d = Driver()
    d.login()
    assert d.send("PASV").codes == [227]
    d.start("DELE f")
    error = d.machine.internal_error()
    assert ClosePassive() not in error
    assert d.machine.state.data_setup is DataSetup.PASSIVE


def test_an_internal_error_in_the_login_that_succeeded_undoes_it() -> None:
    d = Driver()
    assert d.send(f"USER {USER}").codes == [331]
    d.start(f"PASS {PASSWORD}")
    done = d.resume(LoggedIn(may_write=True))
    assert LoginDone(USER) in done.actions
    # The executor failed on the way to the 230: the client is told 451, so it is not in.
    error = d.machine.internal_error()
    assert Logout() in error
    assert not d.machine.state.logged_in
    assert d.send(f"USER {USER}").codes == [331]
    assert d.send(f"PASS {PASSWORD}").codes == [230]


def test_an_internal_error_after_the_login_keeps_the_user_in() -> None:
    d = Driver()
    d.login()
    d.start("DELE f")
    assert Logout() not in d.machine.internal_error()
    assert d.machine.state.logged_in


def test_the_banner_default_is_the_callers() -> None:
    assert Driver().connect().replies == [(220, BANNER)]


@pytest.mark.parametrize(
    ("settings", "second"),
    [
        ({}, "USER anonymous"),
        (
            {
                **ANON,
                "ssl_enable": True,
                "force_local_logins_ssl": False,
                "force_anon_logins_ssl": True,
            },
            "USER anonymous",
        ),
    ],
)
def test_a_refused_user_forgets_the_name_sent_before(
    settings: dict[str, object], second: str
) -> None:
    # vsftpd empties the user name when it refuses USER: the PASS that follows is 503, never
    # a login as the name from an earlier USER.
    d = Driver(make_config(**settings))
    assert d.send(f"USER {USER}").codes == [331]
    assert d.send(second).codes == [530]
    assert d.send(f"PASS {PASSWORD}").codes == [503]
    assert d.machine.state.user is None
