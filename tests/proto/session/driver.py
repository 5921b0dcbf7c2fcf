"""A driver for the session state machine (FtpSession) in tests: lines in, replies and actions out.

Theory of operation: the driver plays the executor without any I/O. `send` parses a line as
the control loop does, hands it to the machine, and answers every action the machine waits on
with a scripted outcome, until the command is done. The outcome for an action is, in order:
the next one-shot outcome queued with `then`, else the `answers` table (FsCall by its FsOp,
every other action by its type). AwaitTransfer and AbortTransfer are answered as the executor
answers them: the running transfer ends first (`transfer_ended` with `transfer_end`, or
ABORTED for AbortTransfer) and only then is the waiting command resumed.

For the steps in between (a transfer that ends while a command waits, a client that goes away)
`start` feeds a line without answering anything, and `resume`, `finish` and `end_transfer`
take it from there.

Every batch of items the machine returns is checked against its contract with the executor:
at most one action that needs an outcome, as the last item, and `machine.waiting` is that
action; every reply encodes to bytes. A test therefore cannot drive the machine into a state
the executor could not handle without failing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import attrs

from ftpsup.config.schema import InstanceConfig
from ftpsup.proto.commands import parse_command
from ftpsup.proto.facts import FileFacts, FileKind
from ftpsup.proto.replies import Reply, reply
from ftpsup.proto.session.actions import (
    NEEDS_OUTCOME,
    AbortTransfer,
    Action,
    Authenticate,
    AwaitTransfer,
    Direction,
    Done,
    FsCall,
    FsDone,
    FsOp,
    LoadTls,
    LoggedIn,
    LoginRejected,
    OpenPassive,
    Outcome,
    PassiveOpened,
    Pause,
    PrepareTransfer,
    StartTls,
    TlsStarted,
    TransferEnd,
    TransferProgress,
    TransferReady,
    TransferResult,
)
from ftpsup.proto.session.machine import FINAL_REPLIES, FtpSession
from ftpsup.proto.session.types import Item
from tests.configs import minimal_config

USER = "alice"
PASSWORD = "right-password"
PEER_V4 = "192.0.2.10"
PEER_V6 = "2001:db8::10"
SERVER_HOST = "192.0.2.1"
PASV_PORT = 30100
FILE_SIZE = 1000
MTIME = 1_600_000_000.0  # 2020-09-13 12:26:40 UTC
FREE_BYTES = 10**9
PROGRESS = 4096
BANNER = "ftpsup test banner"

T = TypeVar("T")
Answer = Callable[[Action], Outcome]


def make_config(**values: object) -> InstanceConfig:
    """An instance configuration for the machine: write_enable on unless `values` say not.

    Nothing reads the paths it names: the machine never touches the disk.
    """
    settings: dict[str, object] = {"write_enable": True, **values}
    return minimal_config(Path("/nonexistent/ftpsup-session-tests"), **settings)


def tls_config(**values: object) -> InstanceConfig:
    """ssl_enable on, with vsftpd's defaults for the rest (local logins and data forced)."""
    return make_config(ssl_enable=True, **values)


@attrs.frozen
class Exchange:
    """What the machine returned for one event and everything it led to, in order."""

    items: tuple[Item, ...]

    @property
    def replies(self) -> list[tuple[int, str]]:
        """Each reply as (code, text); the lines of a multi-line reply joined by newlines."""
        return [(i.code, "\n".join(i.lines)) for i in self.items if isinstance(i, Reply)]

    @property
    def codes(self) -> list[int]:
        return [code for code, _ in self.replies]

    @property
    def code(self) -> int:
        """The code of the only reply."""
        assert len(self.replies) == 1, self.replies
        return self.replies[0][0]

    @property
    def text(self) -> str:
        """The text of the only reply."""
        assert len(self.replies) == 1, self.replies
        return self.replies[0][1]

    @property
    def actions(self) -> list[Action]:
        return [i for i in self.items if not isinstance(i, Reply)]

    def of(self, kind: type[T]) -> list[T]:
        """The items of one kind, in order."""
        return [i for i in self.items if isinstance(i, kind)]

    def kinds(self) -> list[object]:
        """The sequence of items as reply codes and action types, for order checks."""
        return [i.code if isinstance(i, Reply) else type(i) for i in self.items]


def _facts(kind: FileKind = FileKind.FILE) -> FileFacts:
    return FileFacts("f", kind, FILE_SIZE, MTIME, 0o644)


FS_ANSWERS: dict[FsOp, object] = {
    FsOp.IS_DIR: True,
    FsOp.READ_MESSAGE: [],
    FsOp.STAT: _facts(),
    FsOp.FREE_BYTES: FREE_BYTES,
    FsOp.MLST_LINE: "type=file;size=1000; /f",
    FsOp.STAT_LISTING: ["-rw-r--r--    1 ftp      ftp          1000 Sep 13  2020 f"],
}


def _authenticate(action: Action) -> Outcome:
    assert isinstance(action, Authenticate)
    if action.anonymous or action.password == PASSWORD:
        return LoggedIn(may_write=True)
    return LoginRejected()


def _fs_call(action: Action) -> Outcome:
    assert isinstance(action, FsCall)
    return FsDone(FS_ANSWERS.get(action.op))


def _prepare(action: Action) -> Outcome:
    assert isinstance(action, PrepareTransfer)
    # STOU writes a new name of the executor's choosing.
    path = action.path + ".1" if action.direction is Direction.UNIQUE else action.path
    return TransferReady(FILE_SIZE, path)


def const(outcome: Outcome) -> Answer:
    """An answer that is always `outcome`."""
    return lambda _action: outcome


def default_answers() -> dict[type | FsOp, Answer]:
    return {
        Authenticate: _authenticate,
        Pause: const(Done()),
        FsCall: _fs_call,
        OpenPassive: const(PassiveOpened(SERVER_HOST, PASV_PORT)),
        PrepareTransfer: _prepare,
        LoadTls: const(Done()),
        StartTls: const(TlsStarted()),
        AbortTransfer: const(Done()),
        AwaitTransfer: const(Done()),
        TransferProgress: const(FsDone(PROGRESS)),
    }


class Driver:
    """One FtpSession, driven as the executor would drive it, with scripted outcomes."""

    def __init__(
        self, config: InstanceConfig | None = None, *, ipv6: bool = False, peer_ip: str = ""
    ) -> None:
        self.config = config if config is not None else make_config()
        self.machine = FtpSession(
            self.config, peer_ip=peer_ip or (PEER_V6 if ipv6 else PEER_V4), ipv6=ipv6
        )
        self.answers = default_answers()
        self.queued: list[Outcome] = []
        self.transfer_end = TransferEnd.COMPLETE
        # Every item the machine returned, in order, over the driver's life.
        self.history: list[Item] = []

    # -- scripting ----------------------------------------------------------------------------

    def then(self, *outcomes: Outcome) -> Driver:
        """Answer the next actions waited on with `outcomes`, in order, before the table."""
        self.queued.extend(outcomes)
        return self

    def answer(self, key: type | FsOp, outcome: Outcome) -> Driver:
        """From now on answer actions of type `key` (or FsCalls of op `key`) with `outcome`."""
        self.answers[key] = const(outcome)
        return self

    # -- events -------------------------------------------------------------------------------

    def connect(self, banner: str = BANNER) -> Exchange:
        return self._run(self.machine.connected(banner))

    def send(self, line: str | bytes) -> Exchange:
        """One command line, run to its end with scripted outcomes."""
        return self._run(self._command(line))

    def start(self, line: str | bytes) -> Exchange:
        """One command line, stopped at the first action it waits on (machine.waiting)."""
        return self._record(self._command(line))

    def resume(self, outcome: Outcome) -> Exchange:
        """Answer the action waited on with `outcome`, and nothing more."""
        return self._record(self.machine.resume(outcome))

    def finish(self) -> Exchange:
        """Answer the action waited on, and all that follows, with scripted outcomes."""
        assert self.machine.waiting is not None, "no command waits"
        return self._run(None)

    def end_transfer(self, end: TransferEnd = TransferEnd.COMPLETE) -> Exchange:
        """The running transfer ends (the executor's transfer task calls transfer_ended)."""
        assert self.machine.state.transfer is not None, "no transfer runs"
        waiting = self.machine.waiting
        items = self.machine.transfer_ended(TransferResult(end))
        assert not [i for i in items if isinstance(i, NEEDS_OUTCOME)], items
        # One final reply per transfer, and the one its end calls for.
        assert [i for i in items if isinstance(i, Reply)] == [reply(*FINAL_REPLIES[end])], items
        assert self.machine.waiting is waiting
        return self._record(items, checked=True)

    def line_too_long(self) -> Exchange:
        return self._run(self.machine.line_too_long())

    def timed_out(self, *, login: bool) -> Exchange:
        return self._record(self.machine.timed_out(login=login))

    # -- shortcuts ----------------------------------------------------------------------------

    def login(self, user: str = USER, password: str = PASSWORD) -> Exchange:
        """USER and PASS; asserts the 331 and the 230."""
        assert self.send(f"USER {user}").codes == [331]
        done = self.send(f"PASS {password}")
        assert done.codes == [230], done.replies
        return done

    def run(self, *lines: str | bytes) -> list[int]:
        """Several lines, each run to its end; the reply codes of all of them."""
        codes: list[int] = []
        for line in lines:
            codes += self.send(line).codes
        return codes

    def transfer(self, line: str = "RETR f", setup: str = "EPSV") -> Exchange:
        """Set up a data connection and start a transfer; asserts its 150."""
        assert self.send(setup).code in (200, 227, 229)
        started = self.send(line)
        assert started.codes == [150], started.replies
        assert self.machine.state.transfer is not None
        return started

    @property
    def closing(self) -> bool:
        return self.machine.closing

    # -- the executor's part ------------------------------------------------------------------

    def _command(self, line: str | bytes) -> list[Item]:
        raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        return self.machine.command(parse_command(raw))

    def _record(self, items: list[Item], *, checked: bool = False) -> Exchange:
        if not checked:
            self._check(items)
        self.history.extend(items)
        return Exchange(tuple(items))

    def _check(self, items: list[Item]) -> None:
        waiting = [i for i in items if isinstance(i, NEEDS_OUTCOME)]
        assert len(waiting) <= 1, f"more than one action waited on: {items}"
        if waiting:
            assert items[-1] is waiting[0], f"the action waited on is not last: {items}"
            assert self.machine.waiting is waiting[0]
        else:
            assert self.machine.waiting is None, "waiting on an action never emitted"
            assert not self.machine.busy
        for item in items:
            if isinstance(item, Reply):
                assert item.to_bytes().endswith(b"\r\n")

    def _outcome(self, action: Action) -> Outcome:
        if self.queued:
            return self.queued.pop(0)
        key: type | FsOp = action.op if isinstance(action, FsCall) else type(action)
        answer = self.answers.get(key) or self.answers[type(action)]
        return answer(action)

    def _run(self, items: list[Item] | None) -> Exchange:
        out = [] if items is None else list(self._record(items).items)
        for _ in range(100):
            action = self.machine.waiting
            if action is None:
                return Exchange(tuple(out))
            if isinstance(action, AwaitTransfer | AbortTransfer) and self.machine.state.transfer:
                end = TransferEnd.ABORTED if isinstance(action, AbortTransfer) else None
                out += self.end_transfer(end or self.transfer_end).items
            out += self.resume(self._outcome(action)).items
        raise AssertionError("a command waited on more than 100 actions")


def logged_in(*, ipv6: bool = False, **values: object) -> Driver:
    """A driver on make_config(**values), logged in as the test user (no banner sent)."""
    d = Driver(make_config(**values), ipv6=ipv6)
    d.login()
    return d
