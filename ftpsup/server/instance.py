"""One server instance: wire config, users, ports and logs together and serve a listener.

Rules:
- Everything that can fail on bad input (config, listening socket) fails before this runs;
  serve_instance only serves.
- SIGTERM and SIGINT stop accepting at once and give running sessions `drain_seconds` to
  finish; SIGHUP and SIGUSR1 reopen the log files (logrotate).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket

import trio

from ftpsup.config import InstanceConfig
from ftpsup.logs import XferLog, reopen_logs, setup_instance_logging, shutdown_logging
from ftpsup.ports import PortAllocator
from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control
from ftpsup.server.tls import tls_problems
from ftpsup.users import UserDirectory

DRAIN_SECONDS = 30.0
# A dynamic address behind NAT changes rarely; a minute keeps PASV right without a lookup
# per command.
PASV_RESOLVE_SECONDS = 60.0


def resolve_pasv_address(host: str) -> str:
    """The IPv4 address of `host` for PASV replies (blocking; used at start-up).

    Raises:
        OSError: the name does not resolve to an IPv4 address.
    """
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{host} has no IPv4 address")
    return str(infos[0][4][0])


def preflight(config: InstanceConfig) -> tuple[str, list[str]]:
    """Prepare what the instance writes to, before anything is bound.

    Returns:
        The PASV address to advertise, and problems as "key: problem" strings (empty = ready).
    """
    problems: list[str] = []
    for key, directory in (
        ("state_dir", config.state_dir / "ports"),
        ("vsftpd_log_file", config.vsftpd_log_file.parent),
        ("xferlog_file", config.xferlog_file.parent if config.xferlog_enable else None),
    ):
        if directory is None:
            continue
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o750 if "log" in key else 0o700)
        except OSError as exc:
            problems.append(f"{key}: cannot create {directory}: {exc.strerror}")
            continue
        if not os.access(directory, os.W_OK | os.X_OK):
            problems.append(f"{key}: {directory} is not writable by this user")
    pasv_host = config.pasv_address
    if config.pasv_addr_resolve and config.pasv_address:
        try:
            pasv_host = resolve_pasv_address(config.pasv_address)
        except OSError as exc:
            problems.append(f"pasv_address: cannot resolve {config.pasv_address}: {exc}")
    problems += tls_problems(config)
    return pasv_host, problems


async def _refresh_pasv_address(ctx: InstanceContext) -> None:
    host = ctx.config.pasv_address
    while True:
        await trio.sleep(PASV_RESOLVE_SECONDS)
        try:
            infos = await trio.socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            ctx.log.warning("pasv_address %s: %s; keeping %s", host, exc, ctx.pasv_host)
            continue
        if infos and str(infos[0][4][0]) != ctx.pasv_host:
            ctx.pasv_host = str(infos[0][4][0])
            ctx.log.info("pasv_address %s now resolves to %s", host, ctx.pasv_host)


def make_context(config: InstanceConfig, *, pasv_host: str = "") -> InstanceContext:
    log = setup_instance_logging(config.name, config.vsftpd_log_file, debug=config.log_ftp_protocol)
    # The user store is shared code: its warnings belong in this instance's log.
    users_log = logging.getLogger("ftpsup.users")
    users_log.handlers[:] = log.handlers
    users_log.propagate = False
    xferlog = None
    if config.xferlog_enable and config.xferlog_std_format:
        xferlog = XferLog(config.xferlog_file)
    return InstanceContext(
        config=config,
        users=UserDirectory(config.user_db_file),
        ports=PortAllocator(
            config.state_dir / "ports",
            config.pasv_min_port,
            config.pasv_max_port,
            owner=config.name,
        ),
        log=log,
        xferlog=xferlog,
        pasv_host=pasv_host or config.pasv_address,
    )


async def _watch_signals(
    ctx: InstanceContext, accepting: trio.CancelScope, sessions: trio.CancelScope
) -> None:
    with trio.open_signal_receiver(
        signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1
    ) as signals:
        async for signum in signals:
            if signum in (signal.SIGHUP, signal.SIGUSR1):
                reopen_logs()
                if ctx.xferlog is not None:
                    ctx.xferlog.reopen()
                ctx.log.info("log files reopened")
                continue
            ctx.log.info("stopping: no new connections; %d session(s) may finish", ctx.sessions)
            accepting.cancel()
            sessions.deadline = trio.current_time() + DRAIN_SECONDS
            return


async def serve_instance(
    config: InstanceConfig,
    sock: socket.socket,
    *,
    pasv_host: str = "",
    task_status: trio.TaskStatus[InstanceContext] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve FTP on the listening socket `sock` until SIGTERM/SIGINT (and drain) or cancel."""
    ctx = make_context(config, pasv_host=pasv_host)
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    address = sock.getsockname()
    ctx.log.info("instance %s listening on %s port %d", config.name, address[0], address[1])
    try:
        with trio.CancelScope() as sessions:
            async with trio.open_nursery() as handlers:
                with trio.CancelScope() as accepting:
                    handlers.start_soon(_watch_signals, ctx, accepting, sessions)
                    if config.pasv_addr_resolve:
                        handlers.start_soon(_refresh_pasv_address, ctx)
                    task_status.started(ctx)
                    await trio.serve_listeners(
                        functools.partial(serve_control, ctx),
                        [listener],
                        handler_nursery=handlers,
                    )
                await listener.aclose()
                # Only the signal watcher and sessions are left; the watcher has returned.
    finally:
        ctx.log.info("instance %s stopped", config.name)
        if ctx.xferlog is not None:
            ctx.xferlog.close()
        shutdown_logging()
