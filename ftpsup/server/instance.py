"""One server instance: wire config, users, ports and logs together and serve a listener.

Rules:
- Everything that can fail on bad input (config, listening socket) fails before this runs;
  serve_instance only serves.
- SIGTERM and SIGINT stop accepting at once and give running sessions `drain_seconds` to
  finish; SIGHUP and SIGUSR1 reopen the log files (logrotate).
"""

from __future__ import annotations

import functools
import signal
import socket

import trio

from ftpsup.config import InstanceConfig
from ftpsup.logs import XferLog, reopen_logs, setup_instance_logging, shutdown_logging
from ftpsup.ports import PortAllocator
from ftpsup.server.context import InstanceContext
from ftpsup.server.control import serve_control
from ftpsup.users import UserDirectory

DRAIN_SECONDS = 30.0


def make_context(config: InstanceConfig) -> InstanceContext:
    log = setup_instance_logging(config.name, config.vsftpd_log_file, debug=config.log_ftp_protocol)
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
    )


async def _watch_signals(
    ctx: InstanceContext, accepting: trio.CancelScope, sessions: trio.CancelScope
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1) as signals:
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
    task_status: trio.TaskStatus[InstanceContext] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve FTP on the listening socket `sock` until SIGTERM/SIGINT (and drain) or cancel."""
    ctx = make_context(config)
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    address = sock.getsockname()
    ctx.log.info("instance %s listening on %s port %d", config.name, address[0], address[1])
    try:
        with trio.CancelScope() as sessions:
            async with trio.open_nursery() as handlers:
                with trio.CancelScope() as accepting:
                    handlers.start_soon(_watch_signals, ctx, accepting, sessions)
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
