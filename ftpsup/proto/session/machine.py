"""FtpSession: the FTP protocol of one control connection as a state machine without I/O.

Theory of operation (the shape of supervisor/lifecycle.py, and of h11): the executor feeds
events in (a command, the outcome of an action it carried out, the end of a transfer, a
timeout) and gets back an ordered list of items: replies to send and actions to carry out.
Nothing here touches a socket, a file or a clock.

A verb's handler (verbs_*.py, listed in table.py) is a plain function when it can answer at
once, and a generator when it needs I/O: it yields an action that needs an outcome (see
actions.NEEDS_OUTCOME) and receives the outcome at that point. Replies and notices it makes
meanwhile are queued in order. So while a command waits, the last item the executor gets is
the action it waits on (`waiting`); the executor carries it out and calls `resume`.

Order rules (RFC 959 §4.1.3):
- One command at a time. While a transfer runs, ABOR, STAT, NOOP and QUIT are answered at
  once; any other command first waits for the transfer's final reply (AwaitTransfer), so
  replies stay in the order of the commands.
- The end of a transfer (`transfer_ended`) may arrive while a command waits (ABOR, QUIT):
  its final reply is produced then, before the waiting command's own.
"""

from __future__ import annotations

from collections.abc import Mapping

from ftpsup.proto.commands import HTTP_VERBS, Command, CommandSpec, precheck
from ftpsup.proto.replies import Reply, reply
from ftpsup.proto.session.actions import (
    NEEDS_OUTCOME,
    Action,
    AwaitTransfer,
    ClientGone,
    ClosePassive,
    DiscardTransfer,
    Log,
    Logout,
    Outcome,
    TransferEnd,
    TransferResult,
)
from ftpsup.proto.session.policy import SessionPolicy
from ftpsup.proto.session.state import DataSetup, SessionState
from ftpsup.proto.session.table import SPECS, VERBS
from ftpsup.proto.session.types import Item, Steps
from ftpsup.proto.session.verbs_tls import start_tls

# vsftpd 3.0.4's limit: a client that is not talking FTP is dropped before it can log in.
MAX_UNKNOWN_BEFORE_LOGIN = 10
# Verbs that change the control stream itself (TLS on or off): bytes behind them belong to
# the new stream, so nothing is read ahead of them while they wait for a transfer.
STREAM_VERBS = frozenset({"AUTH", "CCC"})

FINAL_REPLIES: dict[TransferEnd, tuple[int, str]] = {
    TransferEnd.COMPLETE: (226, "Transfer complete."),
    TransferEnd.ABORTED: (426, "Connection closed; transfer aborted."),
    TransferEnd.NO_CONNECTION: (425, "Failed to establish data connection."),
    # vsftpd's wording, which clients and admins already search for.
    TransferEnd.REUSE_REFUSED: (522, "SSL connection failed: session reuse required."),
    TransferEnd.HANDSHAKE_FAILED: (
        522,
        "SSL connection failed: TLS handshake on the data connection failed.",
    ),
    TransferEnd.DISK_FULL: (452, "Transfer aborted: insufficient storage space."),
    TransferEnd.LOCAL_ERROR: (451, "Transfer aborted: local error in processing."),
    TransferEnd.TIMED_OUT: (426, "Data connection timed out; transfer aborted."),
    TransferEnd.BROKEN: (426, "Data connection broken; transfer aborted."),
}


class FtpSession:
    """One control connection's protocol: events in, replies and actions out."""

    def __init__(self, config: SessionPolicy, *, peer_ip: str, ipv6: bool) -> None:
        self.state = SessionState(config=config, peer_ip=peer_ip, ipv6=ipv6)
        self._out: list[Item] = []
        self._steps: Steps | None = None
        # The action the running command waits on, or None when no command is running.
        self.waiting: Action | None = None
        # Whether the session was logged in when the running command arrived.
        self._logged_in_before = False

    # -- for the verbs ------------------------------------------------------------------------

    @property
    def specs(self) -> Mapping[str, CommandSpec]:
        """The command table's pre-checks and syntax, for HELP."""
        return SPECS

    @property
    def config(self) -> SessionPolicy:
        return self.state.config

    def reply(self, code: int, *lines: str) -> None:
        self._out.append(reply(code, *lines))

    def send(self, message: Reply) -> None:
        self._out.append(message)

    def act(self, action: Action) -> None:
        """Queue a notice (an action that needs no outcome) after the replies so far."""
        self._out.append(action)

    def log(self, level: str, message: str, *args: object) -> None:
        self._out.append(Log(level, message, args))

    def close(self) -> None:
        """End the session once the replies queued so far have gone out."""
        self.state.closing = True

    # -- events -------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A command is waiting for the outcome of an action."""
        return self._steps is not None

    @property
    def closing(self) -> bool:
        return self.state.closing

    def connected(self, banner: str) -> list[Item]:
        """The connection was accepted: the 220 greeting, after the handshake of implicit FTPS."""
        if self.config.implicit_ssl:
            self._start(self._implicit_tls(banner))
        else:
            self.reply(220, banner)
        return self._emit()

    def _implicit_tls(self, banner: str) -> Steps:
        yield from start_tls(self, implicit=True)
        if not self.closing:
            self.reply(220, banner)

    def command(self, cmd: Command) -> list[Item]:
        """A command line arrived (parsed by proto.commands.parse_command)."""
        assert self._steps is None, "one command at a time"
        self._logged_in_before = self.state.logged_in
        entry = VERBS.get(cmd.verb)
        if self.state.transfer is not None and (entry is None or not entry.spec.during_transfer):
            self._start(self._after_transfer(cmd))
        else:
            self._run(cmd)
        return self._emit()

    def line_too_long(self) -> list[Item]:
        """A line over max_command_length arrived (and was thrown away): 500."""
        assert self._steps is None, "one command at a time"
        if self.state.transfer is not None:
            self._start(self._after_transfer(None))
        else:
            self._run(None)
        return self._emit()

    def resume(self, outcome: Outcome) -> list[Item]:
        """The outcome of the action the running command waits on."""
        steps = self._steps
        assert steps is not None, "no command waits"
        self.waiting = None
        try:
            action = steps.send(outcome)
        except StopIteration:
            self._steps = None
        else:
            self._wait_on(action)
        return self._emit()

    def transfer_ended(self, result: TransferResult) -> list[Item]:
        """The running transfer ended: its final reply (226, 425, 426, 451, 452 or 522)."""
        st = self.state
        st.transfer = None
        st.forget_data_setup()
        self.reply(*FINAL_REPLIES[result.end])
        return self._emit()

    def timed_out(self, *, login: bool) -> list[Item]:
        """The idle clock (or, before login, login_timeout) fired: 421, and the end."""
        if login:
            seconds = self.config.login_timeout
            self.log(
                "info",
                "no login from %s within login_timeout (%d s); closing",
                self.state.peer_ip,
                seconds,
            )
            self.reply(421, f"Login timeout ({seconds} seconds): closing control connection.")
        else:
            self.log("info", "idle session from %s timed out", self.state.peer_ip)
            self.reply(421, "Timeout.")
        self.close()
        return self._emit()

    def internal_error(self) -> list[Item]:
        """A bug in the executor while it ran a command: answer, and serve on.

        What the command left behind goes with it, as the 451 tells the client: a file it had
        opened for a transfer that will now never start; a passive port it opened but never
        announced (with no PASV on record, nothing else would close that port before the next
        PASV or the end of the session); a login whose 230 never went out (the client would
        otherwise be told "Already logged in" when it tries again).
        """
        self._steps = None
        self.waiting = None
        self.act(DiscardTransfer())
        if self.state.data_setup is not DataSetup.PASSIVE:
            self.act(ClosePassive())
        if self.state.logged_in and not self._logged_in_before:
            self.state.logout()
            self.act(Logout())
        self.reply(451, "Internal error; the command was not completed.")
        return self._emit()

    # -- running commands ---------------------------------------------------------------------

    def _emit(self) -> list[Item]:
        out, self._out = self._out, []
        return out

    def _wait_on(self, action: Action) -> None:
        assert isinstance(action, NEEDS_OUTCOME), f"{action!r} needs no outcome: act() it"
        self.waiting = action
        self._out.append(action)

    def _start(self, steps: Steps) -> None:
        try:
            action = next(steps)
        except StopIteration:
            return
        self._steps = steps
        self._wait_on(action)

    def _after_transfer(self, cmd: Command | None) -> Steps:
        read_ahead = cmd is None or cmd.verb not in STREAM_VERBS
        outcome = yield AwaitTransfer(read_ahead=read_ahead)
        if isinstance(outcome, ClientGone) or self.state.closing:
            # The client went away meanwhile: a command it queued behind the transfer (say
            # DELE after RETR) must not run once that transfer was cut short.
            self.close()
            return
        steps = self._checked(cmd)
        if steps is not None:
            yield from steps

    def _run(self, cmd: Command | None) -> None:
        steps = self._checked(cmd)
        if steps is not None:
            self._start(steps)

    def _checked(self, cmd: Command | None) -> Steps | None:
        """Answer a line that is no command; else run the pre-checks, then the handler.

        `cmd` is None for a line that was too long.
        """
        st = self.state
        if cmd is None:
            self.reply(500, "Command line too long.")
            return None
        if not cmd.verb:
            self.reply(500, "Empty command.")
            return None
        if st.user is None and cmd.verb in HTTP_VERBS:
            self.log("warning", "HTTP request from %s refused", st.peer_ip)
            self.reply(421, "HTTP protocol commands not allowed.")
            self.close()
            return None
        if cmd.verb != "RNTO":
            st.rename_from = None
        entry = VERBS.get(cmd.verb)
        refusal = precheck(
            cmd,
            entry.spec if entry is not None else None,
            logged_in=st.logged_in,
            may_write=st.write_allowed(cmd.verb),
        )
        if refusal is not None:
            # An RNTO refused here (no argument) still ends the RNFR/RNTO pair (RFC 959 §4.1.3).
            st.rename_from = None
            self.send(refusal)
            if entry is None and not st.logged_in:
                st.unknown_before_login += 1
                if st.unknown_before_login >= MAX_UNKNOWN_BEFORE_LOGIN:
                    self.reply(421, "Too many unknown commands; closing.")
                    self.close()
            return None
        assert entry is not None
        return entry.handler(self, cmd.arg)
