"""What the session state machine asks of its executor, and what the executor reports back.

An *action* is a request for I/O: check a password, run a file-system operation, open a passive
port, start TLS, start a transfer. Some need an *outcome* before the command can go on (the
machine then waits for `FtpSession.resume`); the others are notices the executor carries out
on the spot (`NEEDS_OUTCOME` tells them apart). A transfer that was started reports its end
later, on its own, as a `TransferResult` (`FtpSession.transfer_ended`).

Everything here is plain data: no sockets, no descriptors owned, no trio.
"""

from __future__ import annotations

import enum

import attrs

# -- actions that need an outcome -------------------------------------------------------------


@attrs.frozen
class Authenticate:
    """Check `password` for `name` (or admit anonymous) and open the home with `umask`.

    Outcome: LoggedIn, LoginRejected or HomeUnavailable.
    """

    name: str
    password: str
    anonymous: bool
    umask: int


@attrs.frozen
class Pause:
    """Wait `seconds` (delay_failed_login) before going on. Outcome: Done."""

    seconds: float


class FsOp(enum.Enum):
    """The file-system operations a command may ask for, run in a worker thread."""

    IS_DIR = "is_dir"  # -> bool
    READ_MESSAGE = "read_message"  # -> list[str] (the lines of a directory's message file)
    MKDIR = "mkdir"
    RMDIR = "rmdir"
    UNLINK = "unlink"
    STAT = "stat"  # -> FileFacts
    RENAME = "rename"  # arg: the target path
    SET_MTIME = "set_mtime"  # arg: the time as seconds since the epoch
    CHMOD = "chmod"  # arg: the mode
    FREE_BYTES = "free_bytes"  # -> int
    MLST_LINE = "mlst_line"  # -> str
    STAT_LISTING = "stat_listing"  # arg: flags -> list[str] (STAT <path>, as LIST rows)
    SET_UMASK = "set_umask"  # arg: the new umask; the home is opened again with it


@attrs.frozen
class FsCall:
    """Run one file-system operation on a virtual path. Outcome: FsDone or FsError."""

    op: FsOp
    path: str
    arg: object = None


@attrs.frozen
class OpenPassive:
    """Lease a passive port and listen on it. Outcome: PassiveOpened or PassiveRefused."""


class Direction(enum.Enum):
    RETRIEVE = "retrieve"
    STORE = "store"
    APPEND = "append"
    UNIQUE = "unique"  # STOU: a new file named after `path`
    LISTING = "listing"


@attrs.frozen
class PrepareTransfer:
    """Open what a transfer reads or writes, before its 150 reply.

    For a listing the listing is built now (`flags` as LIST takes them). The executor owns
    what it opened until StartTransfer or DiscardTransfer. Outcome: TransferReady, FsError
    or NotADirectory.
    """

    verb: str
    direction: Direction
    path: str
    offset: int = 0
    flags: str = ""


@attrs.frozen
class LoadTls:
    """Load the instance's TLS context (certificate and key). Outcome: Done or TlsUnavailable."""


@attrs.frozen
class StartTls:
    """Make the control connection TLS: the handshake. Outcome: TlsStarted or TlsFailed."""

    implicit: bool


@attrs.frozen
class AbortTransfer:
    """Stop the running transfer and wait for its end to be reported. Outcome: Done."""


@attrs.frozen
class AwaitTransfer:
    """Wait for the running transfer's end (its final reply goes out first).

    With `read_ahead`, the control connection is read meanwhile, so a client that goes away
    is noticed at once. Outcome: Done, or ClientGone.
    """

    read_ahead: bool = True


@attrs.frozen
class TransferProgress:
    """How many bytes the running transfer has moved. Outcome: FsDone(int)."""


# -- notices: carried out at once, no outcome -------------------------------------------------


@attrs.frozen
class StartTransfer:
    """Run the prepared transfer in the background: data connection, copy, then its end.

    `active_target` is where to connect for PORT/EPRT; None accepts on the passive port.
    `private` asks for TLS on the data connection.
    """

    verb: str
    path: str
    ascii: bool
    private: bool
    active_target: tuple[str, int] | None


@attrs.frozen
class DiscardTransfer:
    """Close what PrepareTransfer opened: the transfer will not run."""


@attrs.frozen
class ClosePassive:
    """Close the passive listener and give its lease back."""


@attrs.frozen
class LoginDone:
    """`user` is logged in: log it, stop the login clock, tell the TLS session registry."""

    user: str


@attrs.frozen
class LoginFailed:
    """A failed login by `name`, for the log fail2ban reads."""

    name: str


@attrs.frozen
class Logout:
    """REIN: close the home, tell the TLS registry, give a fresh login_timeout."""


@attrs.frozen
class Log:
    """A log line: `level` is a logging level name, `message` %-style with `args`."""

    level: str
    message: str
    args: tuple[object, ...] = ()


Action = (
    Authenticate
    | Pause
    | FsCall
    | OpenPassive
    | PrepareTransfer
    | LoadTls
    | StartTls
    | AbortTransfer
    | AwaitTransfer
    | TransferProgress
    | StartTransfer
    | DiscardTransfer
    | ClosePassive
    | LoginDone
    | LoginFailed
    | Logout
    | Log
)

NEEDS_OUTCOME: tuple[type, ...] = (
    Authenticate,
    Pause,
    FsCall,
    OpenPassive,
    PrepareTransfer,
    LoadTls,
    StartTls,
    AbortTransfer,
    AwaitTransfer,
    TransferProgress,
)

# -- outcomes ---------------------------------------------------------------------------------


@attrs.frozen
class Done:
    """The action finished; there is nothing to report."""


@attrs.frozen
class ClientGone:
    """The client closed the control connection while a command waited."""


@attrs.frozen
class LoggedIn:
    may_write: bool


@attrs.frozen
class LoginRejected:
    pass


@attrs.frozen
class HomeUnavailable:
    pass


@attrs.frozen
class FsDone:
    value: object = None


@attrs.frozen
class FsError:
    """A file-system call failed with this errno (0 when it had none)."""

    errno: int


@attrs.frozen
class NotADirectory:
    """MLSD was given a file (RFC 3659 §7.2)."""


@attrs.frozen
class PassiveOpened:
    """Listening on `port`; `host` is the address PASV advertises."""

    host: str
    port: int


class PassiveRefusal(enum.Enum):
    OVER_ADDRESS_LIMIT = "over_address_limit"  # max_pasv_per_ip
    EXHAUSTED = "exhausted"  # every port of the range leased
    SYSTEM = "system"  # the descriptor limit, ENOBUFS...


@attrs.frozen
class PassiveRefused:
    reason: PassiveRefusal


@attrs.frozen
class TransferReady:
    """Opened: `size` bytes to send (or the file's size now); `path` is the file written
    (STOU's unique name)."""

    size: int
    path: str


@attrs.frozen
class TlsStarted:
    pass


@attrs.frozen
class TlsUnavailable:
    """The certificate cannot be loaded: 431, and the session goes on in clear text."""


@attrs.frozen
class TlsFailed:
    """The handshake failed; the session is over."""


Outcome = (
    Done
    | ClientGone
    | LoggedIn
    | LoginRejected
    | HomeUnavailable
    | FsDone
    | FsError
    | NotADirectory
    | PassiveOpened
    | PassiveRefused
    | TransferReady
    | TlsStarted
    | TlsUnavailable
    | TlsFailed
)


class TransferEnd(enum.Enum):
    """How a started transfer ended; FtpSession.transfer_ended turns it into the final reply."""

    COMPLETE = "complete"  # 226
    ABORTED = "aborted"  # ABOR or the client went away: 426
    NO_CONNECTION = "no_connection"  # the data connection was never made: 425
    REUSE_REFUSED = "reuse_refused"  # require_ssl_reuse: 522
    HANDSHAKE_FAILED = "handshake_failed"  # TLS on the data connection failed: 522
    DISK_FULL = "disk_full"  # 452
    LOCAL_ERROR = "local_error"  # 451
    TIMED_OUT = "timed_out"  # data_connection_timeout: 426
    BROKEN = "broken"  # the data connection broke: 426


@attrs.frozen
class TransferResult:
    end: TransferEnd
