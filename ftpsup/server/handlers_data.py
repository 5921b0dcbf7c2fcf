"""Data-connection verbs: PORT PASV EPRT EPSV TYPE STRU MODE REST ABOR, and the transfers
RETR STOR STOU APPE LIST NLST MLSD (RFC 959, RFC 2428, RFC 3659).

Rules:
- A transfer is checked (path, permission, file opened) on the control loop and answered at
  once when it cannot start; only then does it run in its own task, which sends 150, opens
  the data connection, copies in a worker thread and sends the final reply.
- The final reply says what happened: 226 only when every byte moved; 426 for a broken or
  aborted data connection; 452 for a full disk; 451 for other local errors.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable

import trio

from ftpsup.logs import TransferRecord, log_transfer
from ftpsup.proto import addresses, paths
from ftpsup.proto.numbers import parse_uint
from ftpsup.proto.replies import epsv_reply, pasv_reply
from ftpsup.server import listings
from ftpsup.server.data import OverAddressLimit
from ftpsup.server.handlers_files import resolve_or_reply
from ftpsup.server.handlers_tls import data_tls_refusal
from ftpsup.server.session import Handler, Session, TransferState, os_error_reply
from ftpsup.server.tls import ReusePolicy, SessionNotReused, data_handshake
from ftpsup.server.transfer import (
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

# The largest file offset Linux takes (off_t): REST beyond it could never be honoured.
MAX_OFFSET = 2**63 - 1

Copier = Callable[[DataSocket, Progress], None]
# What runs on the accepted socket: a Copier, or one wrapped in the TLS handshake.
PlainCopier = Callable[[socket.socket, Progress], None]


def _family_number(s: Session) -> int:
    return 2 if s.is_ipv6 else 1


async def _refuse_v4_verb_on_v6(s: Session, verb: str) -> bool:
    # RFC 2428 §2/§3: PORT and PASV carry IPv4 addresses only; an IPv6 client uses EPRT/EPSV.
    if s.is_ipv6:
        await s.reply(522, f"{verb} is IPv4 only; use {'EPSV' if verb == 'PASV' else 'EPRT'} (2).")
        return True
    if s.epsv_all:
        # RFC 2428 §4: after EPSV ALL every other data-connection setup command is refused.
        await s.reply(503, f"{verb} not allowed after EPSV ALL.")
        return True
    return False


async def _enter_passive(s: Session) -> int | None:
    if not s.ctx.config.pasv_enable:
        await s.reply(502, "Passive mode is disabled on this server.")
        return None
    try:
        endpoint = await s.open_passive_endpoint()
    except OSError as exc:
        # EMFILE/ENFILE at the descriptor limit, ENOBUFS, or a lease directory gone wrong:
        # the client may try again later, as with a full range (RFC 959: 425).
        s.log.warning("cannot open a passive port for %s: %s", s.peer_ip, exc.strerror or exc)
        await s.reply(425, "Cannot open a passive data connection now; try again later.")
        return None
    if isinstance(endpoint, OverAddressLimit):
        limit = s.ctx.config.max_pasv_per_ip
        s.ctx.log_refusal(
            "max_pasv_per_ip",
            s.client_key,
            "passive port for %s refused: %s holds %d passive ports (max_pasv_per_ip)",
            s.peer_ip,
            s.client_key,
            limit,
        )
        # No number in the text: a 425 must never look like it names a port.
        await s.reply(425, "Too many passive ports held from your address; try again later.")
        return None
    if endpoint is None:
        s.log.warning("passive range exhausted for %s", s.peer_ip)
        await s.reply(425, "No passive port available; try again later.")
        return None
    return endpoint.port


async def cmd_pasv(s: Session, arg: str) -> None:
    if await _refuse_v4_verb_on_v6(s, "PASV"):
        return
    port = await _enter_passive(s)
    if port is not None:
        host = s.ctx.pasv_host or s.local_ip
        await s.send(pasv_reply(host, port))


async def cmd_epsv(s: Session, arg: str) -> None:
    try:
        request = addresses.parse_epsv_arg(arg)
    except addresses.AddressError as exc:
        await s.reply(exc.reply_code, exc.message)
        return
    if request == "ALL":
        s.epsv_all = True
        await s.reply(200, "EPSV ALL ok.")
        return
    if isinstance(request, int) and request != _family_number(s):
        await s.reply(522, f"Network protocol not supported, use ({_family_number(s)})")
        return
    port = await _enter_passive(s)
    if port is not None:
        await s.send(epsv_reply(port))


async def _set_active(s: Session, target_ip: str, port: int, verb: str) -> None:
    cfg = s.ctx.config
    try:
        host = addresses.resolve_active_target(
            s.peer_ip, target_ip, port, promiscuous=cfg.port_promiscuous, verb=verb
        )
    except addresses.AddressError as exc:
        s.log.warning(
            "%s to %s:%d refused for %s: %s", verb, target_ip, port, s.peer_ip, exc.message
        )
        await s.reply(exc.reply_code, exc.message)
        return
    s.close_data_endpoints()
    s.active_target = (host, port)
    await s.reply(
        200, f"{verb} command successful. Consider using {'PASV' if verb == 'PORT' else 'EPSV'}."
    )


async def cmd_port(s: Session, arg: str) -> None:
    if await _refuse_v4_verb_on_v6(s, "PORT"):
        return
    if not s.ctx.config.port_enable:
        await s.reply(502, "Active mode is disabled on this server; use PASV.")
        return
    try:
        host, port = addresses.parse_port_arg(arg)
    except addresses.AddressError as exc:
        await s.reply(exc.reply_code, exc.message)
        return
    await _set_active(s, host, port, "PORT")


async def cmd_eprt(s: Session, arg: str) -> None:
    if s.epsv_all:
        await s.reply(503, "EPRT not allowed after EPSV ALL.")
        return
    if not s.ctx.config.port_enable:
        await s.reply(502, "Active mode is disabled on this server; use EPSV.")
        return
    try:
        family, host, port = addresses.parse_eprt_arg(arg)
    except addresses.AddressError as exc:
        await s.reply(exc.reply_code, exc.message)
        return
    if family != _family_number(s):
        await s.reply(522, f"Network protocol not supported, use ({_family_number(s)})")
        return
    await _set_active(s, host, port, "EPRT")


async def cmd_type(s: Session, arg: str) -> None:
    words = arg.upper().split()
    if words in (["A"], ["A", "N"]):
        s.ascii = True
        await s.reply(200, "Switching to ASCII mode.")
    elif words in (["I"], ["L", "8"], ["L8"]):
        s.ascii = False
        await s.reply(200, "Switching to Binary mode.")
    else:
        await s.reply(504, "Unsupported TYPE; use A or I.")


async def cmd_stru(s: Session, arg: str) -> None:
    if arg.strip().upper() == "F":
        await s.reply(200, "Structure set to F.")
    else:
        await s.reply(504, "Only file structure (F) is supported.")


async def cmd_mode(s: Session, arg: str) -> None:
    if arg.strip().upper() == "S":
        await s.reply(200, "Mode set to S.")
    else:
        await s.reply(504, "Only stream mode (S) is supported.")


async def cmd_rest(s: Session, arg: str) -> None:
    offset = parse_uint(arg.strip(), MAX_OFFSET)
    if offset is None:
        await s.reply(501, "REST requires a non-negative byte offset.")
        return
    s.rest = offset
    await s.reply(350, f"Restart position accepted ({s.rest}).")


async def cmd_abor(s: Session, arg: str) -> None:
    transfer = s.transfer
    if transfer is None:
        s.close_data_endpoints()
        await s.reply(225, "No transfer to ABOR.")
        return
    # RFC 959 §4.1.3: the transfer's own reply is 426, then ABOR itself is answered 226.
    transfer.abort()
    await transfer.done.wait()
    await s.reply(226, "ABOR successful.")


# -- transfers ----------------------------------------------------------------------------


UPLOAD_VERBS = frozenset({"STOR", "APPE", "STOU"})


class DataHandshakeError(Exception):
    """The TLS handshake of a data connection failed."""


def _final_reply(state: TransferState, error: BaseException | None) -> tuple[int, str]:
    if state.aborted:
        return 426, "Connection closed; transfer aborted."
    if isinstance(error, SessionNotReused):
        # vsftpd's wording, which clients and admins already search for.
        return 522, "SSL connection failed: session reuse required."
    if isinstance(error, DataHandshakeError):
        return 522, "SSL connection failed: TLS handshake on the data connection failed."
    if isinstance(error, LocalIoError):
        reply = os_error_reply(error.error)
        if reply.code == 452:
            return 452, "Transfer aborted: insufficient storage space."
        return 451, "Transfer aborted: local error in processing."
    if isinstance(error, TimeoutError):
        return 426, "Data connection timed out; transfer aborted."
    if error is not None:
        return 426, "Data connection broken; transfer aborted."
    return 226, "Transfer complete."


async def _run_transfer(
    s: Session,
    state: TransferState,
    opening: str,
    copier: Copier,
    *,
    fd: int | None = None,
    record: Callable[[TransferState, bool], Awaitable[None]] | None = None,
    start_now: Callable[[socket.socket, Progress], bool] | None = None,
) -> None:
    """Send 150, then run the transfer in its own task: data connection, copy, final reply.

    `start_now`, when given, is tried on the event loop first for a plain (not TLS) data
    connection; it must never block, and returns True when it moved everything, which spares
    the worker-thread trip. Otherwise `copier` runs in a thread and goes on from where it
    stopped.
    """

    async def run(state: TransferState) -> None:
        try:
            with state.connect_scope:
                try:
                    state.sock = await s.open_data_connection()
                except (trio.TooSlowError, OSError) as exc:
                    s.log.info("data connection for %s failed: %r", s.peer_ip, exc)
                    await s.reply(425, "Failed to establish data connection.")
                    return
            if state.sock is None:  # ABOR while connecting
                await s.reply(426, "Connection closed; transfer aborted.")
                return
            error: BaseException | None = None
            job: PlainCopier = _with_tls(s, state, copier) if s.prot_private else copier
            try:
                done = False
                if start_now is not None and not s.prot_private:
                    done = start_now(state.sock, state.progress)
                if not done:
                    await trio.to_thread.run_sync(
                        job, state.sock, state.progress, limiter=s.ctx.transfer_limiter
                    )
            except (OSError, LocalIoError, SessionNotReused, DataHandshakeError) as exc:
                error = exc
            if isinstance(error, SessionNotReused):
                s.log.warning(
                    "TLS data connection from %s (control connection #%d, user %s) %s; "
                    "refused (require_ssl_reuse)",
                    s.peer_ip,
                    s.tls_owner.serial if s.tls_owner is not None else 0,
                    s.log_user,
                    error,
                )
            elif isinstance(error, DataHandshakeError):
                s.log.warning("TLS data handshake with %s failed: %s", s.peer_ip, error)
            code, text = _final_reply(state, error)
            if record is not None:
                await record(state, code == 226)
            if state.sock is not None:
                state.sock.close()
            state.sock = None
            await s.reply(code, text)
        finally:
            if fd is not None:
                os.close(fd)

    # The 150 goes out before the transfer task exists, so a command pipelined behind this
    # one (NOOP, STAT) is answered after it: replies stay in the order of the commands.
    await s.reply(150, opening)
    s.start_transfer(state, run)


def _with_tls(s: Session, state: TransferState, copier: Copier) -> PlainCopier:
    """Wrap `copier` so the data connection is TLS, resumed from this control connection."""
    ctx = s.tls_context
    cfg = s.ctx.config
    assert ctx is not None
    assert s.tls_owner is not None
    reuse = ReusePolicy(s.ctx.tls.registry, s.tls_owner, cfg.require_ssl_reuse, cfg.ssl_reuse_scope)

    def job(plain: socket.socket, progress: Progress) -> None:
        try:
            tls = data_handshake(
                ctx,
                plain,
                cfg.tls_handshake_timeout,
                reuse=reuse,
                issue_ticket=state.verb not in UPLOAD_VERBS,
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
        close_tls(tls, strict=cfg.strict_ssl_write_shutdown)

    return job


def _recorder(
    s: Session, vpath: str, upload: bool
) -> Callable[[TransferState, bool], Awaitable[None]]:
    started = time.monotonic()

    async def record(state: TransferState, ok: bool) -> None:
        seconds = time.monotonic() - started
        size = state.progress.bytes_done
        log_transfer(
            s.log,
            s.log_user,
            s.peer_ip,
            upload=upload,
            ok=ok,
            path=vpath,
            size=size,
            seconds=seconds,
        )
        if s.ctx.xferlog is not None and s.fs is not None:
            rec = TransferRecord(
                finished=s.ctx.clock(),
                seconds=seconds,
                remote_host=s.peer_ip,
                size=size,
                path=s.fs.real_path(vpath),
                ascii=s.ascii,
                upload=upload,
                anonymous=s.anonymous,
                user=s.log_user,
                complete=ok,
            )
            # Queued for the logging thread: no wait, so a transfer cut by the instance's stop
            # still gets its "i" line, and a failing write (a full disk) ends no session.
            s.ctx.xferlog.write(rec)

    return record


async def _need_endpoint(s: Session) -> bool:
    refusal = data_tls_refusal(s)
    if refusal is not None:
        await s.send(refusal)
        return False
    if s.has_data_endpoint():
        return True
    await s.reply(425, "Use PORT or PASV first.")
    return False


def _open_for_read(fs_open: Callable[[str], int], vpath: str) -> tuple[int, int]:
    fd = fs_open(vpath)
    try:
        return fd, os.fstat(fd).st_size
    except OSError:
        os.close(fd)
        raise


async def cmd_retr(s: Session, arg: str) -> None:
    offset = s.take_rest()
    vpath = await resolve_or_reply(s, arg)
    if vpath is None or not await _need_endpoint(s):
        return
    assert s.fs is not None
    try:
        fd, size = await s.fs_call(_open_for_read, s.fs.open_read, vpath)
    except OSError as exc:
        await s.send(os_error_reply(exc) if exc.errno != 21 else os_error_reply(exc))
        return
    if offset > size:
        os.close(fd)
        await s.reply(554, f"Restart offset {offset} is beyond the end of the file ({size}).")
        return
    timeout = s.ctx.config.data_connection_timeout
    mode = "ASCII" if s.ascii else "BINARY"
    send = send_file_ascii if s.ascii else send_file
    opening = f"Opening {mode} mode data connection for {paths.split(vpath)[1]} ({size} bytes)."
    await _run_transfer(
        s,
        TransferState("RETR", vpath),
        opening,
        # From where send_cached_now stopped, if it started (binary only).
        lambda sock, progress: send(sock, fd, offset + progress.bytes_done, progress, timeout),
        fd=fd,
        record=_recorder(s, vpath, upload=False),
        start_now=None
        if s.ascii
        else lambda sock, progress: send_cached_now(sock, fd, offset, size - offset, progress),
    )


async def _store(s: Session, vpath: str, *, append: bool, offset: int, verb: str) -> None:
    assert s.fs is not None
    try:
        fd = await s.fs_call(s.fs.open_write, vpath, offset=offset, append=append)
    except OSError as exc:
        if offset and exc.errno == errno.EINVAL:
            # RFC 3659 §5.5: a restart marker past the end of the file is 554, as for RETR.
            await s.reply(554, f"Restart offset {offset} is beyond the end of the file.")
            return
        await s.send(os_error_reply(exc))
        return
    await _receive_into(s, fd, vpath, verb, "Ok to send data.")


async def _receive_into(s: Session, fd: int, vpath: str, verb: str, opening: str) -> None:
    timeout = s.ctx.config.data_connection_timeout
    ascii_mode = s.ascii
    # With TLS, only close_notify proves the client sent everything (strict_ssl_read_eof).
    ragged_ok = not s.ctx.config.strict_ssl_read_eof
    await _run_transfer(
        s,
        TransferState(verb, vpath),
        opening,
        lambda sock, progress: receive_file(
            sock, fd, progress, timeout, ascii=ascii_mode, ragged_eof_ok=ragged_ok
        ),
        fd=fd,
        record=_recorder(s, vpath, upload=True),
    )


async def cmd_stor(s: Session, arg: str) -> None:
    offset = s.take_rest()
    vpath = await resolve_or_reply(s, arg)
    if vpath is not None and await _need_endpoint(s):
        await _store(s, vpath, append=False, offset=offset, verb="STOR")


async def cmd_appe(s: Session, arg: str) -> None:
    s.take_rest()
    vpath = await resolve_or_reply(s, arg)
    if vpath is not None and await _need_endpoint(s):
        await _store(s, vpath, append=True, offset=0, verb="APPE")


async def cmd_stou(s: Session, arg: str) -> None:
    s.take_rest()
    stem = arg.strip() or "ftpsup"
    vpath = await resolve_or_reply(s, stem)
    if vpath is None or not await _need_endpoint(s):
        return
    directory, name = paths.split(vpath)
    assert s.fs is not None
    try:
        fd, unique = await s.fs_call(s.fs.create_unique, directory, name or "ftpsup")
    except OSError as exc:
        await s.send(os_error_reply(exc))
        return
    # RFC 1123 §4.1.2.9: the 150 reply names the file as "FILE: name".
    await _receive_into(s, fd, unique, "STOU", f"FILE: {paths.split(unique)[1]}")


# -- listings -----------------------------------------------------------------------------


async def _send_listing(s: Session, verb: str, arg: str) -> None:
    s.take_rest()
    flags, target = listings.split_list_arg(arg) if verb != "MLSD" else ("", arg)
    vpath = await resolve_or_reply(s, target)
    if vpath is None or not await _need_endpoint(s):
        return
    assert s.fs is not None
    try:
        data = await s.fs_call(listings.build, s, verb, vpath, flags)
    except OSError as exc:
        await s.send(os_error_reply(exc))
        return
    except listings.NotADirectory:
        await s.reply(501, f"{verb} needs a directory.")
        return
    timeout = s.ctx.config.data_connection_timeout
    await _run_transfer(
        s,
        TransferState(verb, vpath),
        "Here comes the directory listing.",
        lambda sock, progress: send_bytes(sock, data, progress, timeout),
        start_now=lambda sock, progress: send_bytes_now(sock, data, progress),
    )


async def cmd_list(s: Session, arg: str) -> None:
    await _send_listing(s, "LIST", arg)


async def cmd_nlst(s: Session, arg: str) -> None:
    await _send_listing(s, "NLST", arg)


async def cmd_mlsd(s: Session, arg: str) -> None:
    await _send_listing(s, "MLSD", arg)


HANDLERS: dict[str, Handler] = {
    "PORT": cmd_port,
    "PASV": cmd_pasv,
    "EPRT": cmd_eprt,
    "EPSV": cmd_epsv,
    "TYPE": cmd_type,
    "STRU": cmd_stru,
    "MODE": cmd_mode,
    "REST": cmd_rest,
    "ABOR": cmd_abor,
    "RETR": cmd_retr,
    "STOR": cmd_stor,
    "APPE": cmd_appe,
    "STOU": cmd_stou,
    "LIST": cmd_list,
    "NLST": cmd_nlst,
    "MLSD": cmd_mlsd,
}
