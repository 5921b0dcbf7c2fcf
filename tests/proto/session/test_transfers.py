"""Transfers on the state machine: the order of replies and actions around a running transfer
(RFC 959 §4.1.3: 150 first, the final reply once, ABOR's 426 then 226, commands queued
behind the transfer), and the final reply for every way a transfer ends."""

from __future__ import annotations

import errno

import pytest

from ftpsup.proto.replies import Reply
from ftpsup.proto.session.actions import (
    AbortTransfer,
    AwaitTransfer,
    ClientGone,
    Direction,
    Done,
    FsCall,
    FsDone,
    FsError,
    NotADirectory,
    PrepareTransfer,
    StartTransfer,
    TransferEnd,
    TransferProgress,
    TransferReady,
)
from ftpsup.proto.session.machine import FINAL_REPLIES
from ftpsup.proto.session.state import DataSetup
from tests.proto.session.driver import FILE_SIZE, PROGRESS, Driver, logged_in


def running(line: str = "RETR f", **values: object) -> Driver:
    d = logged_in(ipv6=False, **values)
    d.transfer(line)
    return d


# -- starting -------------------------------------------------------------------------------


def test_a_transfer_is_prepared_then_150_then_started() -> None:
    d = logged_in()
    d.send("EPSV")
    started = d.send("RETR /pub/f")
    assert started.kinds() == [PrepareTransfer, 150, StartTransfer]
    assert started.of(PrepareTransfer) == [
        PrepareTransfer("RETR", Direction.RETRIEVE, "/pub/f", 0, "")
    ]
    assert started.text == f"Opening BINARY mode data connection for f ({FILE_SIZE} bytes)."
    assert started.of(StartTransfer) == [
        StartTransfer("RETR", "/pub/f", ascii=False, private=False, active_target=None)
    ]
    assert d.machine.state.transfer == ("RETR", "/pub/f")
    assert not d.machine.busy


def test_the_150_says_the_mode_in_type_a() -> None:
    d = logged_in()
    d.run("TYPE A", "EPSV")
    started = d.send("RETR f")
    assert started.text.startswith("Opening ASCII mode")
    assert started.of(StartTransfer)[0].ascii is True


@pytest.mark.parametrize(
    ("line", "direction", "text"),
    [
        ("STOR f", Direction.STORE, "Ok to send data."),
        ("APPE f", Direction.APPEND, "Ok to send data."),
        ("STOU f", Direction.UNIQUE, "FILE: f.1"),
        ("LIST -la d", Direction.LISTING, "Here comes the directory listing."),
        ("MLSD d", Direction.LISTING, "Here comes the directory listing."),
    ],
)
def test_each_transfer_verb_prepares_its_direction_and_words_its_150(
    line: str, direction: Direction, text: str
) -> None:
    d = logged_in()
    d.send("EPSV")
    started = d.send(line)
    assert started.of(PrepareTransfer)[0].direction is direction
    assert started.replies == [(150, text)]


def test_list_flags_and_stou_default_name() -> None:
    d = logged_in()
    d.send("EPSV")
    listing = d.send("LIST -l -a some dir").of(PrepareTransfer)[0]
    assert (listing.flags, listing.path) == ("la", "/some dir")
    d.end_transfer()
    d.send("EPSV")
    assert d.send("STOU").of(PrepareTransfer)[0].path == "/ftpsup"


def test_a_file_that_cannot_be_opened_is_refused_before_150() -> None:
    d = logged_in()
    d.send("EPSV")
    refused = d.then(FsError(errno.ENOENT)).send("RETR missing")
    assert refused.kinds() == [PrepareTransfer, 550]
    assert d.machine.state.transfer is None
    # The data connection set up stays for the next try.
    assert d.machine.state.data_setup is DataSetup.PASSIVE
    assert d.send("RETR f").codes == [150]


def test_mlsd_of_a_file_replies_501() -> None:
    d = logged_in()
    d.send("EPSV")
    assert d.then(NotADirectory()).send("MLSD f").replies == [(501, "MLSD needs a directory.")]


def test_a_full_disk_on_opening_replies_452() -> None:
    d = logged_in()
    d.send("EPSV")
    assert d.then(FsError(errno.ENOSPC)).send("STOR f").codes == [452]


# -- the end ----------------------------------------------------------------------------------


@pytest.mark.parametrize("end", list(TransferEnd), ids=lambda e: e.value)
def test_every_transfer_end_has_its_final_reply(end: TransferEnd) -> None:
    d = running()
    final = d.end_transfer(end)
    assert final.replies == [FINAL_REPLIES[end]]
    assert d.machine.state.transfer is None
    # The data connection was for that transfer only.
    assert d.machine.state.data_setup is DataSetup.NONE
    assert d.send("RETR f").codes == [425]


@pytest.mark.parametrize(
    ("end", "code"),
    [
        (TransferEnd.COMPLETE, 226),
        (TransferEnd.ABORTED, 426),
        (TransferEnd.NO_CONNECTION, 425),
        (TransferEnd.REUSE_REFUSED, 522),
        (TransferEnd.HANDSHAKE_FAILED, 522),
        (TransferEnd.DISK_FULL, 452),
        (TransferEnd.LOCAL_ERROR, 451),
        (TransferEnd.TIMED_OUT, 426),
        (TransferEnd.BROKEN, 426),
    ],
)
def test_final_reply_codes(end: TransferEnd, code: int) -> None:
    assert FINAL_REPLIES[end][0] == code
    assert set(FINAL_REPLIES) == set(TransferEnd)


def test_reuse_refused_uses_vsftpds_words() -> None:
    assert FINAL_REPLIES[TransferEnd.REUSE_REFUSED] == (
        522,
        "SSL connection failed: session reuse required.",
    )


# -- commands during a transfer -----------------------------------------------------------------


def test_noop_during_a_transfer_is_answered_at_once() -> None:
    d = running()
    assert d.send("NOOP").kinds() == [200]
    assert d.send("NOOP").kinds() == [200]
    assert d.machine.state.transfer is not None
    assert d.end_transfer().codes == [226]


def test_stat_during_a_transfer_reports_its_progress_at_once() -> None:
    d = running("RETR /pub/f")
    status = d.send("STAT")
    assert status.kinds() == [TransferProgress, 211]
    assert f"Transferring /pub/f (RETR): {PROGRESS} bytes so far" in status.text
    assert "Logged in as alice" in status.text
    assert d.machine.state.transfer is not None


def test_stat_after_the_transfer_reports_none() -> None:
    d = running()
    d.end_transfer()
    assert "No transfer in progress" in d.send("STAT").text


@pytest.mark.parametrize("line", ["DELE f", "PWD", "CWD /", "FROB", "RETR f", "REIN", "HELP"])
def test_another_command_waits_for_the_final_reply(line: str) -> None:
    d = running()
    queued = d.start(line)
    assert queued.kinds() == [AwaitTransfer]
    assert queued.of(AwaitTransfer) == [AwaitTransfer(read_ahead=True)]
    assert d.end_transfer().codes == [226]
    after = d.finish()
    assert after.codes
    assert d.machine.state.transfer is None


def test_a_queued_command_runs_after_the_final_reply() -> None:
    d = running()
    answer = d.send("DELE f")
    assert answer.kinds() == [AwaitTransfer, 226, FsCall, 250]


def test_a_transfer_queued_behind_a_transfer_needs_a_new_data_connection() -> None:
    d = running()
    assert d.send("RETR f").kinds() == [AwaitTransfer, 226, 425]


@pytest.mark.parametrize("verb", ["AUTH TLS", "CCC"])
def test_commands_that_change_the_stream_wait_without_reading_ahead(verb: str) -> None:
    d = running(ssl_enable=True, force_local_logins_ssl=False, force_local_data_ssl=False)
    assert d.start(verb).of(AwaitTransfer) == [AwaitTransfer(read_ahead=False)]


def test_a_client_gone_while_a_command_waits_runs_nothing_more() -> None:
    d = running()
    d.start("DELE f")
    d.end_transfer(TransferEnd.ABORTED)
    after = d.resume(ClientGone())
    assert after.items == ()
    assert d.closing
    assert not [a for a in d.history if isinstance(a, FsCall)]


def test_a_client_gone_before_the_transfer_ends_runs_nothing_more() -> None:
    d = running()
    d.start("DELE f")
    assert d.resume(ClientGone()).items == ()
    assert d.closing


# -- ABOR, QUIT ---------------------------------------------------------------------------------


def test_abor_stops_the_transfer_then_426_then_226() -> None:
    d = running()
    aborting = d.start("ABOR")
    assert aborting.kinds() == [AbortTransfer]
    assert d.end_transfer(TransferEnd.ABORTED).replies == [FINAL_REPLIES[TransferEnd.ABORTED]]
    assert d.resume(Done()).replies == [(226, "ABOR successful.")]
    assert not d.machine.busy
    assert d.send("NOOP").codes == [200]


def test_abor_of_a_transfer_that_completed_meanwhile_is_226_then_226() -> None:
    d = running()
    d.start("ABOR")
    assert d.end_transfer(TransferEnd.COMPLETE).codes == [226]
    assert d.resume(Done()).codes == [226]


def test_abor_without_a_transfer_replies_225_and_closes_the_passive_port() -> None:
    d = logged_in()
    d.send("EPSV")
    answer = d.send("ABOR")
    assert answer.replies == [(225, "No transfer to ABOR.")]
    assert [type(a).__name__ for a in answer.actions] == ["ClosePassive"]
    assert d.send("RETR f").codes == [425]


def test_quit_during_a_transfer_waits_for_its_final_reply_then_221() -> None:
    d = running()
    quitting = d.start("QUIT")
    assert quitting.of(AwaitTransfer) == [AwaitTransfer(read_ahead=False)]
    assert not d.closing
    assert d.end_transfer().codes == [226]
    assert d.resume(Done()).replies == [(221, "Goodbye.")]
    assert d.closing


def test_site_umask_waits_for_the_transfer_before_it_reopens_the_home() -> None:
    d = running("STOR f")
    answer = d.send("SITE UMASK 027")
    assert answer.kinds() == [AwaitTransfer, 226, FsCall, 200]


def test_the_final_reply_of_a_transfer_ends_in_order_with_stat_between() -> None:
    d = running()
    d.send("STAT")
    d.send("NOOP")
    d.end_transfer()
    codes = [item.code for item in d.history if isinstance(item, Reply)]
    assert codes[-4:] == [150, 211, 200, 226]


def test_a_transfer_outcome_reaches_the_150_with_the_files_size() -> None:
    d = logged_in()
    d.send("EPSV")
    started = d.then(TransferReady(12345, "/f")).send("RETR f")
    assert "(12345 bytes)" in started.text


def test_stat_progress_without_a_number_says_zero() -> None:
    d = running()
    d.start("STAT")
    assert "0 bytes so far" in d.resume(FsDone(None)).text


# RFC 959 §4.1.3: while a transfer runs, only ABOR, STAT, NOOP and QUIT are answered before its
# final reply. An empty or overlong line waits too: a client that pipelined it must not read its
# 500 as the transfer's reply.


def test_an_empty_line_during_a_transfer_is_answered_after_the_final_reply() -> None:
    d = running()
    assert d.send("").kinds() == [AwaitTransfer, 226, 500]


def test_an_overlong_line_during_a_transfer_is_answered_after_the_final_reply() -> None:
    d = running()
    assert d.line_too_long().kinds() == [AwaitTransfer, 226, 500]
