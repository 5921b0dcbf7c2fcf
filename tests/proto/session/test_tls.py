"""The FTPS policy on the state machine: AUTH, PBSZ, PROT, CCC, the force_* keys at USER, PROT C
and the transfer, allow_anon_ssl, and implicit FTPS (RFC 2228, RFC 4217, vsftpd's keys)."""

from __future__ import annotations

import pytest

from ftpsup.proto.session.actions import (
    Authenticate,
    Done,
    LoadTls,
    PrepareTransfer,
    StartTls,
    StartTransfer,
    TlsFailed,
    TlsUnavailable,
)
from tests.proto.session.driver import BANNER, PASSWORD, USER, Driver, make_config, tls_config

ANON = {"anonymous_enable": True, "anon_root": "/srv/anon"}


def tls_session(**values: object) -> Driver:
    """Connected, AUTH TLS done, not logged in."""
    d = Driver(tls_config(**values))
    d.connect()
    assert d.send("AUTH TLS").codes == [234]
    assert d.machine.state.control_tls
    return d


def private_login(**values: object) -> Driver:
    """AUTH TLS, PBSZ 0, PROT P, alice logged in."""
    d = tls_session(**values)
    assert d.run("PBSZ 0", "PROT P") == [200, 200]
    d.login()
    return d


# -- AUTH ------------------------------------------------------------------------------------


def test_auth_tls_loads_the_certificate_replies_234_then_starts_the_handshake() -> None:
    d = Driver(tls_config())
    answer = d.send("AUTH TLS")
    assert answer.kinds() == [LoadTls, 234, StartTls]
    assert answer.of(StartTls) == [StartTls(implicit=False)]
    assert answer.replies == [(234, "Proceed with negotiation.")]
    assert d.machine.state.control_tls


@pytest.mark.parametrize("mechanism", ["TLS", "SSL", "TLS-C", "tls", "TLS-P"])
def test_auth_accepts_the_tls_mechanisms(mechanism: str) -> None:
    d = Driver(tls_config())
    assert d.send(f"AUTH {mechanism}").codes == [234]
    # TLS-P also protects the data channel (draft-murray-auth-ftp-ssl).
    assert d.machine.state.prot_private is (mechanism == "TLS-P")
    assert d.machine.state.pbsz_set is (mechanism == "TLS-P")


def test_auth_without_ssl_enable_replies_502() -> None:
    d = Driver(make_config())
    answer = d.send("AUTH TLS")
    assert answer.replies == [(502, "TLS is not enabled on this server.")]
    assert answer.actions == []


def test_a_second_auth_replies_503_and_keeps_tls() -> None:
    d = tls_session()
    assert d.send("AUTH TLS").replies == [(503, "Already using TLS.")]
    assert d.send("AUTH SSL").codes == [503]
    assert d.machine.state.control_tls
    assert "Control connection is TLS" in d.send("STAT").text


def test_auth_with_an_unknown_mechanism_replies_504_and_starts_nothing() -> None:
    d = Driver(tls_config())
    answer = d.send("AUTH XYZ")
    assert answer.replies == [(504, "Unknown AUTH mechanism; use AUTH TLS.")]
    assert answer.actions == []
    assert d.send("NOOP").codes == [200]


def test_auth_when_the_certificate_cannot_be_loaded_replies_431_and_stays_in_clear() -> None:
    d = Driver(tls_config())
    answer = d.then(TlsUnavailable()).send("AUTH TLS")
    assert answer.kinds() == [LoadTls, 431]
    assert not d.closing
    assert not d.machine.state.control_tls
    assert d.send("NOOP").codes == [200]


def test_a_failed_handshake_ends_the_session() -> None:
    d = Driver(tls_config())
    assert d.start("AUTH TLS").kinds() == [LoadTls]
    assert d.resume(Done()).kinds() == [234, StartTls]
    assert d.resume(TlsFailed()).items == ()
    assert d.closing
    assert not d.machine.state.control_tls


def test_ccc_is_refused_with_533_and_tls_stays() -> None:
    d = private_login()
    assert d.send("CCC").replies == [(533, "CCC refused: the control connection stays encrypted.")]
    assert d.machine.state.control_tls


# -- PBSZ, PROT ----------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["PBSZ 0", "PROT P", "PROT C"])
def test_pbsz_and_prot_before_auth_reply_503_naming_auth_tls(line: str) -> None:
    d = Driver(tls_config())
    answer = d.send(line)
    assert answer.code == 503
    assert "AUTH TLS" in answer.text


def test_prot_p_needs_pbsz_first() -> None:
    d = tls_session()
    assert d.send("PROT P").replies == [(503, "PROT P needs PBSZ first: send PBSZ 0.")]
    assert d.send("PBSZ 0").replies == [(200, "PBSZ=0")]
    assert d.send("PROT P").replies == [(200, "PROT now Private.")]
    assert d.machine.state.prot_private


def test_prot_c_needs_no_pbsz() -> None:
    # Python's ftplib sends PROT C without PBSZ.
    d = tls_session()
    assert d.send("PROT C").replies == [(200, "PROT now Clear.")]


@pytest.mark.parametrize(("level", "code"), [("S", 536), ("E", 536), ("X", 504), ("p", 200)])
def test_prot_levels(level: str, code: int) -> None:
    d = tls_session()
    d.send("PBSZ 0")
    assert d.send(f"PROT {level}").codes == [code]


def test_prot_c_after_login_is_refused_with_534_when_data_is_forced() -> None:
    d = private_login()
    refused = d.send("PROT C")
    assert refused.code == 534
    assert d.machine.state.prot_private
    assert d.send("PROT P").codes == [200]


def test_prot_c_after_login_is_accepted_when_data_is_not_forced() -> None:
    d = private_login(force_local_data_ssl=False)
    assert d.send("PROT C").codes == [200]
    d.send("EPSV")
    started = d.send("RETR f")
    assert started.codes == [150]
    assert started.of(StartTransfer)[0].private is False


def test_prot_c_before_login_is_accepted_and_the_transfer_refused_with_521() -> None:
    # As vsftpd: before login the user, and so the rule, is not known yet.
    d = tls_session()
    assert d.run("PBSZ 0", "PROT C") == [200, 200]
    d.login()
    d.send("EPSV")
    refused = d.send("STOR clear.bin")
    assert refused.replies == [(521, "Data connections must be encrypted: use PBSZ 0 and PROT P.")]
    assert refused.of(PrepareTransfer) == []


@pytest.mark.parametrize("line", ["LIST", "NLST", "MLSD", "RETR x", "STOR x", "APPE x", "STOU"])
def test_every_transfer_without_prot_p_is_refused_with_521_when_data_is_forced(line: str) -> None:
    d = tls_session()
    d.send("PBSZ 0")
    d.login()
    d.send("EPSV")
    assert d.send(line).codes == [521]


def test_521_comes_before_425_for_a_missing_data_connection() -> None:
    d = tls_session()
    d.login()
    assert d.send("RETR f").codes == [521]


def test_a_private_transfer_asks_for_tls_on_the_data_connection() -> None:
    d = private_login()
    d.send("EPSV")
    started = d.send("RETR f")
    assert started.of(StartTransfer)[0].private is True


def test_force_anon_data_ssl_applies_to_anonymous_sessions_only() -> None:
    settings = {
        **ANON,
        "allow_anon_ssl": True,
        "force_local_data_ssl": False,
        "force_anon_data_ssl": True,
    }
    anon = tls_session(**settings)
    anon.login("anonymous", "guest@example.com")
    anon.send("EPSV")
    assert anon.send("RETR f").codes == [521]
    assert anon.send("PROT C").codes == [534]
    local = tls_session(**settings)
    local.login()
    local.send("EPSV")
    assert local.send("RETR f").codes == [150]


def test_without_ssl_enable_nothing_is_forced() -> None:
    d = Driver(make_config(force_local_data_ssl=True, force_local_logins_ssl=True))
    d.login()
    d.send("EPSV")
    assert d.send("RETR f").codes == [150]


# -- forced logins and anonymous over TLS, at USER ---------------------------------------------


def test_a_local_user_in_clear_text_is_refused_at_user_naming_auth_tls() -> None:
    d = Driver(tls_config())
    refused = d.send(f"USER {USER}")
    assert refused.replies == [
        (530, "Non-anonymous sessions must use encryption: use AUTH TLS first.")
    ]
    # No password is ever asked for, and the same connection may still upgrade.
    assert d.send(f"PASS {PASSWORD}").codes == [503]
    assert d.send("AUTH TLS").codes == [234]
    d.login()


def test_force_local_logins_ssl_off_admits_a_clear_text_login() -> None:
    d = Driver(tls_config(force_local_logins_ssl=False))
    assert d.login().codes == [230]


@pytest.mark.parametrize(
    ("settings", "over_tls", "code"),
    [
        ({}, False, 331),
        ({}, True, 530),
        ({"allow_anon_ssl": True}, True, 331),
        ({"force_anon_logins_ssl": True}, False, 530),
        ({"force_anon_logins_ssl": True, "allow_anon_ssl": True}, True, 331),
    ],
)
def test_anonymous_tls_policy_at_user(
    settings: dict[str, object], over_tls: bool, code: int
) -> None:
    d = Driver(tls_config(**ANON, **settings))
    if over_tls:
        d.send("AUTH TLS")
    answer = d.send("USER anonymous")
    assert answer.codes == [code]
    if code == 530:
        assert d.send("PASS guest@example.com").codes == [503]
        assert answer.of(Authenticate) == []


def test_anonymous_refused_over_tls_names_the_reason() -> None:
    d = tls_session(**ANON)
    assert d.send("USER anonymous").text == "Anonymous sessions may not use encryption."
    # A local user on the same connection is welcome.
    assert d.send(f"USER {USER}").codes == [331]


# -- REIN, implicit FTPS -----------------------------------------------------------------------


def test_rein_keeps_tls_and_resets_pbsz_and_prot() -> None:
    d = private_login()
    assert d.send("REIN").codes == [220]
    st = d.machine.state
    assert st.control_tls
    assert not st.prot_private
    assert not st.pbsz_set
    assert "Data connections will be plain text" in d.send("STAT").text
    # A forced login needs no new AUTH, but the transfer needs PROT P again.
    d.login()
    d.send("EPSV")
    assert d.send("RETR f").codes == [521]


def test_implicit_ftps_greets_only_after_the_handshake() -> None:
    d = Driver(tls_config(implicit_ssl=True))
    greeting = d.connect()
    assert greeting.kinds() == [LoadTls, StartTls, 220]
    assert greeting.of(StartTls) == [StartTls(implicit=True)]
    assert greeting.replies == [(220, BANNER)]
    assert d.machine.state.control_tls
    assert d.send("AUTH TLS").codes == [503]
    d.login()


@pytest.mark.parametrize("failure", [TlsUnavailable(), TlsFailed()])
def test_implicit_ftps_without_tls_closes_without_a_clear_text_reply(
    failure: TlsUnavailable | TlsFailed,
) -> None:
    d = Driver(tls_config(implicit_ssl=True))
    if isinstance(failure, TlsUnavailable):
        greeting = d.then(failure).connect()
    else:
        greeting = d.then(Done(), failure).connect()
    assert greeting.replies == []
    assert d.closing
