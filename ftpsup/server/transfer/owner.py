"""RunningTransfer: one transfer's resources, owned in one place from open to close.

Theory of operation: the state machine asks for a transfer in two steps. PrepareTransfer opens
what the transfer reads or writes (a file descriptor, or a listing built in memory) before the
150 reply; StartTransfer runs it in its own task (transfer/task.py). From the moment the file
is opened this object owns the descriptor; from the start it also owns the passive listener
with its lease, and then the data socket (plain or TLS). Every path (the transfer refused
after opening, completed, failed, aborted, or the session cancelled at any await) ends in
`close`, which closes each exactly once (the task calls it in its `finally`).

The copy is one path: connect or accept the data connection, then, for a plain connection,
try the non-blocking fast path on the event loop (`start_now`: a small listing, or a file
whole in the page cache), else the blocking copy in a worker thread (`copier`: sendfile,
splice or the TYPE A loop of transfer/copying.py, wrapped in TLS by `with_tls` for PROT P).
The result is a TransferEnd the state machine turns into the final reply.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
from collections.abc import Callable

import attrs
import trio

from ftpsup.proto.session.actions import TransferEnd
from ftpsup.server.data import PassiveEndpoint
from ftpsup.server.tls import ReusePolicy, SessionNotReused, data_handshake
from ftpsup.server.transfer.copying import (
    DataSocket,
    LocalIoError,
    Progress,
    close_tls,
    receive_file,
    send_bytes,
    send_bytes_now,
    send_cached_now,
    send_file,
    send_file_ascii,
)

UPLOAD_VERBS = frozenset({"STOR", "APPE", "STOU"})


class DataHandshakeError(Exception):
    """The TLS handshake of a data connection failed."""


@attrs.define(eq=False)
class RunningTransfer:
    """What one transfer reads or writes, its data socket, and what STAT and ABOR see."""

    verb: str
    vpath: str
    # The file read or written; None for a listing, which sends `listing`.
    fd: int | None = None
    listing: bytes = b""
    # The file's size (a download's length), or the listing's.
    size: int = 0
    offset: int = 0
    progress: Progress = attrs.field(factory=Progress)
    done: trio.Event = attrs.field(factory=trio.Event)
    connect_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    sock: socket.socket | None = None
    # The passive listener and its lease, taken from the session when the transfer starts.
    passive: PassiveEndpoint | None = None
    aborted: bool = False
    # time.monotonic() when the file was opened: the xferlog's transfer time starts there.
    started: float = 0.0

    @property
    def upload(self) -> bool:
        return self.verb in UPLOAD_VERBS

    def abort(self) -> None:
        """Stop the transfer at once: cancel the connect wait, wake the copying thread."""
        self.aborted = True
        self.connect_scope.cancel()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                # The base-class shutdown, also for a TLS socket: SSLSocket.shutdown first
                # drops its TLS state, and the copying thread would then read ciphertext as
                # data (or send a block in clear). This way its next TLS read or write fails.
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the file, the data socket and the passive listener, releasing its lease;
        safe to call more than once."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.passive is not None:
            self.passive.close()
            self.passive = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # -- the copy -----------------------------------------------------------------------

    def copier(
        self, *, ascii: bool, timeout: float, ragged_eof_ok: bool
    ) -> Callable[[DataSocket, Progress], None]:
        """The blocking copy for a worker thread, from where the fast path stopped."""
        fd, offset, data = self.fd, self.offset, self.listing
        if fd is None:
            return lambda sock, progress: send_bytes(sock, data, progress, timeout)
        if self.upload:
            return lambda sock, progress: receive_file(
                sock, fd, progress, timeout, ascii=ascii, ragged_eof_ok=ragged_eof_ok
            )
        send = send_file_ascii if ascii else send_file
        return lambda sock, progress: send(
            sock, fd, offset + progress.bytes_done, progress, timeout
        )

    def start_now(self, sock: socket.socket, *, ascii: bool) -> bool:
        """The non-blocking fast path on the event loop; True when it moved everything."""
        if self.fd is None:
            return send_bytes_now(sock, self.listing, self.progress)
        if self.upload or ascii:
            return False
        return send_cached_now(sock, self.fd, self.offset, self.size - self.offset, self.progress)


def with_tls(
    copier: Callable[[DataSocket, Progress], None],
    ctx: ssl.SSLContext,
    reuse: ReusePolicy,
    *,
    handshake_seconds: float,
    issue_ticket: bool,
    strict_shutdown: bool,
) -> Callable[[socket.socket, Progress], None]:
    """Wrap `copier` so the data connection is TLS, resumed from the control connection."""

    def job(plain: socket.socket, progress: Progress) -> None:
        try:
            tls = data_handshake(
                ctx, plain, handshake_seconds, reuse=reuse, issue_ticket=issue_ticket
            )
        except (ssl.SSLError, OSError) as exc:
            raise DataHandshakeError(str(exc)) from exc
        # ABOR keeps shutting down the plain socket under the TLS: the copy then fails.
        try:
            copier(tls, progress)
        except BaseException:
            # The session stays resumable for the control connection's next transfer.
            tls.abandon()
            raise
        close_tls(tls, strict=strict_shutdown)

    return job


def transfer_end(transfer: RunningTransfer, error: BaseException | None) -> TransferEnd:
    """How the transfer ended, from its abort flag and the exception its copy raised."""
    if transfer.aborted:
        return TransferEnd.ABORTED
    if isinstance(error, SessionNotReused):
        return TransferEnd.REUSE_REFUSED
    if isinstance(error, DataHandshakeError):
        return TransferEnd.HANDSHAKE_FAILED
    if isinstance(error, LocalIoError):
        return TransferEnd.DISK_FULL if _disk_full(error.error) else TransferEnd.LOCAL_ERROR
    if isinstance(error, TimeoutError):
        return TransferEnd.TIMED_OUT
    if error is not None:
        return TransferEnd.BROKEN
    return TransferEnd.COMPLETE


def _disk_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT)
