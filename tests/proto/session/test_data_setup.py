"""Data-connection setup and the state commands leave for the next one, on the state machine:
PASV/EPSV/PORT/EPRT (RFC 959, RFC 2428), EPSV ALL, REST (RFC 3659 §5) and RNFR/RNTO."""

from __future__ import annotations

import errno

import pytest

from ftpsup.proto.session.actions import (
    ClosePassive,
    DiscardTransfer,
    FsCall,
    FsError,
    FsOp,
    OpenPassive,
    PassiveRefusal,
    PassiveRefused,
    PrepareTransfer,
    StartTransfer,
    TransferReady,
)
from ftpsup.proto.session.state import DataSetup
from tests.proto.session.driver import (
    PASV_PORT,
    PEER_V4,
    PEER_V6,
    SERVER_HOST,
    logged_in,
)

PORT_ARG = PEER_V4.replace(".", ",") + ",200,10"


# -- PASV, EPSV, PORT, EPRT -------------------------------------------------------------------


def test_pasv_opens_a_passive_port_and_names_it() -> None:
    d = logged_in()
    answer = d.send("PASV")
    assert answer.kinds() == [OpenPassive, 227]
    host = SERVER_HOST.replace(".", ",")
    assert answer.text == f"Entering Passive Mode ({host},{PASV_PORT >> 8},{PASV_PORT & 255})."
    assert d.machine.state.data_setup is DataSetup.PASSIVE


def test_epsv_names_only_the_port() -> None:
    d = logged_in(ipv6=True)
    assert d.send("EPSV").replies == [(229, f"Entering Extended Passive Mode (|||{PASV_PORT}|)")]


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (PassiveRefusal.OVER_ADDRESS_LIMIT, "Too many passive ports held from your address"),
        (PassiveRefusal.EXHAUSTED, "No passive port available"),
        (PassiveRefusal.SYSTEM, "Cannot open a passive data connection now"),
    ],
)
def test_a_refused_passive_port_replies_425(reason: PassiveRefusal, text: str) -> None:
    d = logged_in()
    answer = d.then(PassiveRefused(reason)).send("EPSV")
    assert answer.code == 425
    assert answer.text.startswith(text)
    assert d.machine.state.data_setup is DataSetup.NONE
    assert d.send("RETR f").codes == [425]


def test_pasv_enable_false_refuses_pasv_and_epsv_with_502() -> None:
    d = logged_in(pasv_enable=False)
    assert d.send("PASV").codes == [502]
    assert d.send("EPSV").codes == [502]


def test_port_enable_false_refuses_port_and_eprt_with_502() -> None:
    d = logged_in(port_enable=False)
    assert d.send(f"PORT {PORT_ARG}").codes == [502]
    assert d.send(f"EPRT |1|{PEER_V4}|51210|").codes == [502]


def test_port_names_the_active_target_of_the_transfer() -> None:
    d = logged_in()
    assert d.send(f"PORT {PORT_ARG}").codes == [200]
    started = d.send("RETR f")
    assert started.of(StartTransfer)[0].active_target == (PEER_V4, 200 * 256 + 10)


def test_eprt_with_the_unspecified_address_means_the_client() -> None:
    d = logged_in(ipv6=True)
    assert d.send("EPRT |2|::|51210|").codes == [200]
    started = d.send("RETR f")
    assert started.of(StartTransfer)[0].active_target == (PEER_V6, 51210)


def test_port_to_another_host_is_refused_unless_port_promiscuous() -> None:
    assert logged_in().send("PORT 10,0,0,1,200,10").replies == [(500, "Illegal PORT command.")]
    promiscuous = logged_in(port_promiscuous=True)
    assert promiscuous.send("PORT 10,0,0,1,200,10").codes == [200]


def test_port_after_pasv_gives_the_passive_port_back() -> None:
    d = logged_in()
    d.send("PASV")
    answer = d.send(f"PORT {PORT_ARG}")
    assert answer.kinds() == [ClosePassive, 200]
    assert d.send("RETR f").of(StartTransfer)[0].active_target is not None


def test_pasv_after_port_makes_the_transfer_passive() -> None:
    d = logged_in()
    d.send(f"PORT {PORT_ARG}")
    d.send("PASV")
    assert d.send("RETR f").of(StartTransfer)[0].active_target is None


@pytest.mark.parametrize("line", ["PASV", f"PORT {PORT_ARG}"])
def test_pasv_and_port_on_ipv6_reply_522(line: str) -> None:
    d = logged_in(ipv6=True)
    answer = d.send(line)
    assert answer.code == 522
    assert "IPv4 only" in answer.text
    assert answer.actions == []


@pytest.mark.parametrize(("ipv6", "other"), [(False, 2), (True, 1)])
def test_epsv_and_eprt_for_the_other_family_reply_522(ipv6: bool, other: int) -> None:
    d = logged_in(ipv6=ipv6)
    own = 3 - other
    refused = d.send(f"EPSV {other}")
    assert refused.replies == [(522, f"Network protocol not supported, use ({own})")]
    host = "::1" if other == 2 else "127.0.0.1"
    assert d.send(f"EPRT |{other}|{host}|51210|").codes == [522]
    assert d.send(f"EPSV {own}").codes == [229]


def test_epsv_with_an_unknown_family_replies_522() -> None:
    assert logged_in().send("EPSV 3").codes == [522]


# -- EPSV ALL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ipv6", "v4_code"), [(False, 503), (True, 522)])
def test_epsv_all_refuses_every_other_setup_command(ipv6: bool, v4_code: int) -> None:
    d = logged_in(ipv6=ipv6)
    assert d.send("EPSV ALL").replies == [(200, "EPSV ALL ok.")]
    # PASV and PORT carry IPv4 addresses: on IPv6 they are refused as such (522) first.
    assert d.send("PASV").codes == [v4_code]
    assert d.send(f"PORT {PORT_ARG}").codes == [v4_code]
    family, host = (2, PEER_V6) if ipv6 else (1, PEER_V4)
    assert d.send(f"EPRT |{family}|{host}|51210|").codes == [503]
    assert d.send("EPSV").codes == [229]
    assert d.send("NLST").codes == [150]


# -- REST ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["RETR", "STOR"])
def test_rest_is_the_offset_of_the_next_retr_or_stor_only(verb: str) -> None:
    d = logged_in()
    assert d.send("REST 100").replies == [(350, "Restart position accepted (100).")]
    d.send("EPSV")
    first = d.send(f"{verb} f")
    assert first.of(PrepareTransfer)[0].offset == 100
    d.end_transfer()
    d.send("EPSV")
    assert d.send(f"{verb} f").of(PrepareTransfer)[0].offset == 0


@pytest.mark.parametrize("line", ["APPE f", "STOU", "LIST", "NLST", "MLSD"])
def test_rest_is_ignored_and_forgotten_by_the_other_transfers(line: str) -> None:
    d = logged_in()
    d.send("REST 100")
    d.send("EPSV")
    assert d.send(line).of(PrepareTransfer)[0].offset == 0
    d.end_transfer()
    d.send("EPSV")
    assert d.send("RETR f").of(PrepareTransfer)[0].offset == 0


def test_rest_survives_commands_that_are_not_transfers() -> None:
    d = logged_in()
    d.run("REST 100", "NOOP", "PWD", "TYPE I", "EPSV")
    assert d.send("RETR f").of(PrepareTransfer)[0].offset == 100


def test_rest_is_consumed_by_a_transfer_that_fails() -> None:
    d = logged_in()
    d.send("REST 100")
    assert d.send("RETR f").codes == [425]
    d.send("EPSV")
    assert d.send("RETR f").of(PrepareTransfer)[0].offset == 0


def test_rest_beyond_the_end_of_the_file_is_554_for_retr() -> None:
    d = logged_in()
    d.send("REST 5000")
    d.send("EPSV")
    answer = d.then(TransferReady(1000, "/f")).send("RETR f")
    assert answer.kinds() == [PrepareTransfer, DiscardTransfer, 554]
    assert answer.text == "Restart offset 5000 is beyond the end of the file (1000)."
    assert d.machine.state.transfer is None


def test_rest_at_the_end_of_the_file_is_a_transfer_of_nothing() -> None:
    d = logged_in()
    d.send("REST 1000")
    d.send("EPSV")
    assert d.then(TransferReady(1000, "/f")).send("RETR f").codes == [150]


def test_rest_beyond_the_end_of_the_file_is_554_for_stor() -> None:
    # The executor reports EINVAL when the offset lies past the file's end.
    d = logged_in()
    d.send("REST 5000")
    d.send("EPSV")
    answer = d.then(FsError(errno.EINVAL)).send("STOR f")
    assert answer.replies == [(554, "Restart offset 5000 is beyond the end of the file.")]


@pytest.mark.parametrize("arg", ["-1", "x", "1.5", "\u0663", "\u00b2", "9" * 30, "0x10"])
def test_rest_takes_ascii_digits_within_off_t_only(arg: str) -> None:
    d = logged_in()
    assert d.send(f"REST {arg}").replies == [(501, "REST requires a non-negative byte offset.")]
    assert d.machine.state.rest == 0


def test_rest_takes_the_largest_offset_linux_has() -> None:
    d = logged_in()
    assert d.send(f"REST {2**63 - 1}").codes == [350]
    assert d.send(f"REST {2**63}").codes == [501]


# -- RNFR, RNTO -----------------------------------------------------------------------------------


def test_rnfr_checks_the_source_then_rnto_renames() -> None:
    d = logged_in()
    source = d.send("RNFR a")
    assert source.of(FsCall) == [FsCall(FsOp.STAT, "/a")]
    assert source.replies == [(350, "Ready for RNTO.")]
    target = d.send("RNTO b")
    assert target.of(FsCall) == [FsCall(FsOp.RENAME, "/a", "/b")]
    assert target.codes == [250]
    assert d.send("RNTO c").codes == [503]


def test_rnto_without_rnfr_replies_503() -> None:
    assert logged_in().send("RNTO b").replies == [(503, "RNFR required first.")]


@pytest.mark.parametrize("between", ["NOOP", "PWD", "FROB", "RNTO", "TYPE I", "REST 1"])
def test_any_command_between_rnfr_and_rnto_cancels_the_rename(between: str) -> None:
    d = logged_in()
    d.send("RNFR a")
    d.send(between)
    assert d.send("RNTO b").codes == [503]


def test_rnfr_of_a_missing_file_leaves_nothing_to_rename() -> None:
    d = logged_in()
    assert d.then(FsError(errno.ENOENT)).send("RNFR a").codes == [550]
    assert d.send("RNTO b").codes == [503]


def test_a_failed_rename_is_reported_and_forgotten() -> None:
    d = logged_in()
    d.send("RNFR a")
    assert d.then(FsError(errno.EACCES)).send("RNTO b").replies == [(550, "Permission denied.")]
    assert d.send("RNTO b").codes == [503]


def test_an_rnto_refused_for_a_missing_argument_still_ends_the_rename() -> None:
    # RFC 959 §4.1.3: RNTO must come right after RNFR; the refused RNTO was that command.
    d = logged_in()
    d.send("RNFR a")
    assert d.send("RNTO").codes == [501]
    renamed = d.send("RNTO b")
    assert renamed.codes == [503]
    assert renamed.of(FsCall) == []


def test_rest_in_arabic_indic_digits_leaves_the_next_retr_at_offset_0() -> None:
    d = logged_in()
    assert d.send("REST \u0663").codes == [501]
    d.send("EPSV")
    assert d.send("RETR f").of(PrepareTransfer)[0].offset == 0
