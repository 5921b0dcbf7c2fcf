"""Properties of the state machine over generated input (Hypothesis).

- Any line of bytes, in any state, never raises and always gets a reply, or ends the session.
- Whole sessions of commands, with every outcome the executor may report drawn at random and
  transfers ending at random points, keep the machine's contract: at most one action waited
  on at a time, always the last item (the Driver checks every batch); every command answered
  or the session ended; each 150 followed by its StartTransfer, and one final reply for each
  transfer started.
"""

from __future__ import annotations

import errno

from hypothesis import given
from hypothesis import strategies as st

from ftpsup.proto.facts import FileFacts, FileKind
from ftpsup.proto.replies import Reply
from ftpsup.proto.session.actions import (
    AbortTransfer,
    Action,
    Authenticate,
    AwaitTransfer,
    ClientGone,
    Done,
    FsCall,
    FsDone,
    FsError,
    FsOp,
    HomeUnavailable,
    LoadTls,
    LoggedIn,
    LoginRejected,
    NotADirectory,
    OpenPassive,
    Outcome,
    PassiveOpened,
    PassiveRefusal,
    PassiveRefused,
    Pause,
    PrepareTransfer,
    StartTls,
    StartTransfer,
    TlsFailed,
    TlsStarted,
    TlsUnavailable,
    TransferEnd,
    TransferProgress,
    TransferReady,
)
from ftpsup.proto.session.table import VERBS
from tests.proto.session.driver import MTIME, PEER_V4, SERVER_HOST, Driver, Exchange, make_config

ERRNOS = [
    errno.ENOENT,
    errno.EACCES,
    errno.ENOSPC,
    errno.EEXIST,
    errno.ENOTEMPTY,
    errno.EINVAL,
    errno.EISDIR,
    errno.EIO,
    0,
]
PORT_ARG = PEER_V4.replace(".", ",") + ",200,10"
VOCABULARY = [
    "USER alice",
    "USER anonymous",
    "PASS right-password",
    "PASS wrong",
    "PASS",
    "AUTH TLS",
    "AUTH TLS-P",
    "PBSZ 0",
    "PROT P",
    "PROT C",
    "CCC",
    "EPSV",
    "EPSV ALL",
    "PASV",
    f"PORT {PORT_ARG}",
    f"EPRT |1|{PEER_V4}|51210|",
    "REST 10",
    "RETR f",
    "STOR f",
    "APPE f",
    "STOU",
    "LIST -l",
    "NLST",
    "MLSD",
    "ABOR",
    "STAT",
    "STAT /",
    "NOOP",
    "QUIT",
    "REIN",
    "RNFR a",
    "RNTO b",
    "DELE f",
    "MKD d",
    "RMD d",
    "CWD d",
    "CDUP",
    "PWD",
    "SITE UMASK 022",
    "SITE CHMOD 644 f",
    "ALLO 10",
    "SIZE f",
    "MDTM f",
    "MFMT 20200101000000 f",
    "MLST f",
    "FEAT",
    "HELP",
    "OPTS MLST size;",
    "TYPE A",
    "TYPE I",
    "FROB",
    "",
    "GET /",
]
# Transfers need a data connection set up right before them: more of both.
WEIGHTED = VOCABULARY + ["EPSV", "PASV", "RETR f", "STOR f", "LIST -l", "ABOR", "STAT"] * 4

lines = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")),
    st.tuples(st.sampled_from(sorted(VERBS)), st.text(max_size=40)).map(
        lambda pair: f"{pair[0]} {pair[1]}".encode("utf-8", "surrogatepass")
    ),
)


def _answered_or_closed(d: Driver, answer: Exchange) -> None:
    assert answer.replies or d.closing, answer.items


@given(line=lines, logged_in=st.booleans(), transfer=st.booleans(), ipv6=st.booleans())
def test_any_line_gets_a_reply_or_ends_the_session(
    line: bytes, logged_in: bool, transfer: bool, ipv6: bool
) -> None:
    settings = {"ssl_enable": True, "force_local_logins_ssl": False, "force_local_data_ssl": False}
    d = Driver(make_config(**settings), ipv6=ipv6)
    d.connect()
    if logged_in:
        d.login()
        if transfer:
            d.transfer()
    _answered_or_closed(d, d.send(line))
    if not d.closing:
        assert d.send("NOOP").codes[-1] == 200


@given(arg=st.integers(min_value=-(2**70), max_value=2**70))
def test_rest_accepts_exactly_the_offsets_linux_has(arg: int) -> None:
    d = Driver()
    d.login()
    expected = 350 if 0 <= arg <= 2**63 - 1 else 501
    assert d.send(f"REST {arg}").codes == [expected]


# -- whole sessions with outcomes drawn at random ----------------------------------------------


def _fs_value(op: FsOp) -> st.SearchStrategy[object]:
    if op is FsOp.IS_DIR:
        return st.booleans()
    if op in (FsOp.READ_MESSAGE, FsOp.STAT_LISTING):
        return st.lists(st.text(max_size=20), max_size=3)
    if op is FsOp.STAT:
        kinds = st.sampled_from(list(FileKind))
        return kinds.map(lambda kind: FileFacts("f", kind, 10, MTIME, 0o644))
    if op is FsOp.FREE_BYTES:
        return st.integers(0, 2**40)
    if op is FsOp.MLST_LINE:
        return st.text(max_size=30)
    return st.none()


def outcomes(action: Action) -> st.SearchStrategy[Outcome]:
    """Every outcome the executor may report for `action` (actions.py's docstrings)."""
    errors = st.sampled_from(ERRNOS).map(FsError)
    if isinstance(action, Authenticate):
        return st.sampled_from(
            [LoggedIn(True), LoggedIn(False), LoginRejected(), HomeUnavailable()]
        )
    if isinstance(action, FsCall):
        return st.one_of(_fs_value(action.op).map(FsDone), errors)
    if isinstance(action, OpenPassive):
        opened = st.integers(1, 65535).map(lambda port: PassiveOpened(SERVER_HOST, port))
        return st.one_of(opened, st.sampled_from(list(PassiveRefusal)).map(PassiveRefused))
    if isinstance(action, PrepareTransfer):
        ready = st.integers(0, 2**40).map(lambda size: TransferReady(size, action.path))
        return st.one_of(ready, errors, st.just(NotADirectory()))
    if isinstance(action, LoadTls):
        return st.sampled_from([Done(), TlsUnavailable()])
    if isinstance(action, StartTls):
        return st.sampled_from([TlsStarted(), TlsFailed()])
    if isinstance(action, AwaitTransfer):
        return st.sampled_from([Done(), ClientGone()])
    if isinstance(action, TransferProgress):
        return st.integers(0, 2**40).map(FsDone)
    assert isinstance(action, Pause | AbortTransfer), action
    return st.just(Done())


def _run_command(d: Driver, data: st.DataObject, line: str) -> Exchange:
    items = list(d.start(line).items)
    for _ in range(20):
        action = d.machine.waiting
        if action is None:
            return Exchange(tuple(items))
        outcome = data.draw(outcomes(action))
        # The executor answers these once the transfer task has ended (and sent its final
        # reply); a client that went away may be noticed before that.
        if (
            isinstance(action, AwaitTransfer | AbortTransfer)
            and d.machine.state.transfer
            and (not isinstance(outcome, ClientGone) or data.draw(st.booleans()))
        ):
            items += d.end_transfer(data.draw(st.sampled_from(list(TransferEnd)))).items
        items += d.resume(outcome).items
    raise AssertionError("a command waited on more than 20 actions")


@given(data=st.data(), ipv6=st.booleans(), tls=st.booleans())
def test_random_sessions_keep_the_machines_contract(
    data: st.DataObject, ipv6: bool, tls: bool
) -> None:
    config = make_config(
        ssl_enable=tls,
        force_local_logins_ssl=False,
        force_local_data_ssl=data.draw(st.booleans()),
        anonymous_enable=True,
        anon_root="/srv/anon",
        anon_upload_enable=True,
    )
    d = Driver(config, ipv6=ipv6)
    d.connect()
    if data.draw(st.booleans()):
        # Most commands need a login, which random lines seldom reach on their own.
        d.login()
    for _ in range(data.draw(st.integers(1, 40))):
        if d.closing:
            break
        if d.machine.state.transfer is not None and data.draw(st.integers(0, 3)) == 0:
            # Driver.end_transfer checks the one final reply each end gets.
            d.end_transfer(data.draw(st.sampled_from(list(TransferEnd))))
        line = data.draw(st.sampled_from(WEIGHTED))
        answer = _run_command(d, data, line)
        _answered_or_closed(d, answer)
        items = answer.items
        for index, item in enumerate(items):
            if isinstance(item, Reply) and item.code == 150:
                # A 150 always comes with the transfer it announces, right after it.
                assert index + 1 < len(items), items
                assert isinstance(items[index + 1], StartTransfer), items
