"""Running a transfer in its own task: data connection, copy, record, final reply.

Rules:
- The 150 reply went out before this task runs (replies stay in the order of the commands).
- The final reply says what happened (FtpSession.transfer_ended): 226 only when every byte
  moved; 426 for a broken or aborted data connection; 452 for a full disk; 451 for other
  local errors; 425 when the data connection never came; 522 for TLS refusals.
- The transfer's end is recorded (log line, xferlog) before its final reply, also when the
  instance's stop cuts it: a cut transfer still gets its "i" line. Both are queued for the
  logging thread, so recording never waits, and a failing xferlog write ends no session.
- Whatever happens, the file, the data socket and the passive lease are released, and the
  idle clock restarts if the session is waiting for a command.
"""

from __future__ import annotations

import functools
import socket
import time

import trio

from ftpsup.logs import TransferRecord, log_transfer
from ftpsup.proto.replies import Reply
from ftpsup.proto.session.actions import StartTransfer, TransferEnd, TransferResult
from ftpsup.server import workers
from ftpsup.server.data import accept_data, connect_data
from ftpsup.server.session import Session
from ftpsup.server.tls import ReusePolicy, SessionNotReused
from ftpsup.server.transfer.copying import LocalIoError
from ftpsup.server.transfer.owner import (
    DataHandshakeError,
    RunningTransfer,
    transfer_end,
    with_tls,
)


async def run_transfer(s: Session, transfer: RunningTransfer, start: StartTransfer) -> None:
    """The transfer task: everything after the 150 reply."""
    try:
        end = await _copy(s, transfer, start)
        _record(s, transfer, start, end is TransferEnd.COMPLETE)
        items = s.machine.transfer_ended(TransferResult(end))
        for item in items:
            if isinstance(item, Reply):
                s.queue(item)
    finally:
        # Released before the final reply is sent, with no await since the state machine
        # was told: from transfer_ended on it serves commands as if no transfer ran, and
        # one served while the reply waits to go out (PASV, another RETR) must not find this
        # transfer's passive endpoint or its place in s.transfer.
        transfer.close()
        s.transfer = None
        transfer.done.set()
        if s.awaiting_command:
            s.arm_idle_timeout()
    # Queued before `done` woke a command waiting behind the transfer: that command's replies
    # follow it.
    await s.flush()


async def _open_data_connection(
    s: Session, transfer: RunningTransfer, start: StartTransfer
) -> socket.socket:
    """Accept or connect the data connection prepared by PASV/EPSV or PORT/EPRT."""
    cfg = s.ctx.config
    if start.active_target is None:
        assert transfer.passive is not None
        return await accept_data(
            transfer.passive,
            s.peer_ip,
            promiscuous=cfg.pasv_promiscuous,
            accept_seconds=cfg.accept_timeout,
            log=s.ctx.logs.data,
        )
    return await connect_data(
        s.family,
        start.active_target,
        local_ip=s.local_ip,
        source_port=cfg.ftp_data_port if cfg.connect_from_port_20 else None,
        connect_seconds=cfg.connect_timeout,
        log=s.ctx.logs.data,
    )


async def _copy(s: Session, transfer: RunningTransfer, start: StartTransfer) -> TransferEnd:
    cfg = s.ctx.config
    with transfer.connect_scope:
        try:
            transfer.sock = await _open_data_connection(s, transfer, start)
        except (trio.TooSlowError, OSError) as exc:
            s.ctx.logs.data.info("data connection for %s failed: %r", s.peer_ip, exc)
            return TransferEnd.NO_CONNECTION
    if transfer.sock is None:  # ABOR while connecting
        return TransferEnd.ABORTED
    copier = transfer.copier(
        ascii=start.ascii,
        timeout=cfg.data_connection_timeout,
        # With TLS, only close_notify proves the client sent everything (strict_ssl_read_eof).
        ragged_eof_ok=not cfg.strict_ssl_read_eof,
    )
    error: BaseException | None = None
    try:
        if start.private:
            assert s.tls_context is not None
            assert s.tls_owner is not None
            reuse = ReusePolicy(
                s.ctx.tls.registry, s.tls_owner, cfg.require_ssl_reuse, cfg.ssl_reuse_scope
            )
            job = with_tls(
                copier,
                s.tls_context,
                reuse,
                handshake_seconds=cfg.tls_handshake_timeout,
                issue_ticket=not transfer.upload,
                strict_shutdown=cfg.strict_ssl_write_shutdown,
            )
            await workers.run_sync(
                functools.partial(job, transfer.sock, transfer.progress), s.ctx.transfer_limiter
            )
        elif not transfer.start_now(transfer.sock, ascii=start.ascii):
            await workers.run_sync(
                functools.partial(copier, transfer.sock, transfer.progress), s.ctx.transfer_limiter
            )
    except (OSError, LocalIoError, SessionNotReused, DataHandshakeError) as exc:
        error = exc
    if isinstance(error, SessionNotReused):
        s.ctx.logs.data.warning(
            "TLS data connection from %s (control connection #%d, user %s) %s; "
            "refused (require_ssl_reuse)",
            s.peer_ip,
            s.tls_owner.serial if s.tls_owner is not None else 0,
            s.log_user,
            error,
        )
    elif isinstance(error, DataHandshakeError):
        s.ctx.logs.data.warning("TLS data handshake with %s failed: %s", s.peer_ip, error)
    return transfer_end(transfer, error)


def _record(s: Session, transfer: RunningTransfer, start: StartTransfer, ok: bool) -> None:
    if transfer.verb in ("LIST", "NLST", "MLSD"):
        return
    seconds = time.monotonic() - transfer.started
    size = transfer.progress.bytes_done
    st = s.machine.state
    log_transfer(
        s.ctx.logs.data,
        s.log_user,
        s.peer_ip,
        upload=transfer.upload,
        ok=ok,
        path=transfer.vpath,
        size=size,
        seconds=seconds,
    )
    if s.ctx.xferlog is not None and s.fs is not None:
        rec = TransferRecord(
            finished=s.ctx.clock(),
            seconds=seconds,
            remote_host=s.peer_ip,
            size=size,
            path=s.fs.real_path(transfer.vpath),
            ascii=start.ascii,
            upload=transfer.upload,
            anonymous=st.anonymous,
            user=s.log_user,
            complete=ok,
        )
        # Queued for the logging thread: no wait, so a transfer cut by the instance's stop
        # still gets its "i" line, and a failing write (a full disk) ends no session.
        s.ctx.xferlog.write(rec)
