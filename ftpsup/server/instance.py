"""One server instance: wire config, users, ports and logs together and serve a listener.

Rules:
- Everything that can fail on bad input (config, listening socket) fails before this runs;
  serve_instance only serves.
- SIGTERM and SIGINT stop accepting at once and give running sessions `stopwaitsecs` to
  finish (a second signal ends them at once); SIGHUP and SIGUSR1 reopen the log files
  (logrotate).
- Under the supervisor, `--status-fd` is this process's end of a socketpair carrying one JSON
  object per line: "ready" is sent once connections are accepted, each
  `{"query": "status", "id": K}` is answered with the session and lease counts, and EOF (the
  supervisor is gone) stops the instance as SIGTERM does, so no orphan keeps the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket

import trio

from ftpsup import jsonlines
from ftpsup.address_slots import AddressSlots
from ftpsup.config.schema import InstanceConfig
from ftpsup.log_files import XferLog, reopen_logs, setup_instance_logging, shutdown_logging
from ftpsup.ports import PortAllocator
from ftpsup.server import privileges
from ftpsup.server.accepting import accept_sessions
from ftpsup.server.context import InstanceContext
from ftpsup.tls.contexts import tls_problems
from ftpsup.users.accounts import Account
from ftpsup.users.directory import UserDirectory

MAX_STATUS_LINE = 4096
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


def preflight(config: InstanceConfig, *, create: bool = True) -> tuple[str, list[str]]:
    """Prepare what the instance writes to, before anything is bound.

    Args:
        create: make the missing directories; False only checks, changing nothing (`ftpsup
            start` checks every instance before it prepares any).

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
        if not create and not os.path.lexists(directory):
            continue  # check_paths judged whether it can be created
        try:
            if create:
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
            ctx.logs.data.warning("pasv_address %s: %s; keeping %s", host, exc, ctx.pasv_host)
            continue
        if infos and str(infos[0][4][0]) != ctx.pasv_host:
            ctx.pasv_host = str(infos[0][4][0])
            ctx.logs.data.info("pasv_address %s now resolves to %s", host, ctx.pasv_host)


def return_large_allocations_to_os() -> None:
    """Pin glibc's mmap threshold so scrypt's 16 MiB work area is given back after each login.

    glibc raises its mmap threshold after a large block is freed, so later 16 MiB scrypt
    buffers come from a per-thread heap that keeps them resident: one 16 MiB pocket per
    thread that ever checked a password. A fixed threshold keeps large blocks on mmap, which
    returns them to the kernel on free.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    m_mmap_threshold = -3
    # Above the copy loops' 1 MiB buffers, below scrypt's 16 MiB.
    mallopt(m_mmap_threshold, 4 * 1024 * 1024)


def make_context(
    config: InstanceConfig, *, pasv_host: str = "", store_dir_fd: int | None = None
) -> InstanceContext:
    xferlog_file = (
        config.xferlog_file if config.xferlog_enable and config.xferlog_std_format else None
    )
    log = setup_instance_logging(
        config.name,
        config.vsftpd_log_file,
        debug=config.log_ftp_protocol,
        xferlog_file=xferlog_file,
    )
    # The user store is shared code: its warnings belong in this instance's log.
    users_log = logging.getLogger("ftpsup.users")
    users_log.handlers[:] = log.handlers
    users_log.propagate = False
    ctx = InstanceContext(
        config=config,
        users=UserDirectory(config.user_db_file, dir_fd=store_dir_fd),
        ports=PortAllocator(
            config.state_dir / "ports",
            config.pasv_min_port,
            config.pasv_max_port,
            owner=config.name,
        ),
        xferlog=XferLog(config.name) if xferlog_file is not None else None,
        pasv_host=pasv_host or config.pasv_address,
        pasv_slots=AddressSlots(config.state_dir / "ports"),
    )
    ctx.leases_in_memory = ctx.ports.in_memory()
    return ctx


def _log_identity(ctx: InstanceContext, account: Account | None) -> None:
    keeps_port_20 = privileges.needs_bind_service(
        ctx.config.connect_from_port_20, ctx.config.ftp_data_port
    )
    if account is not None:
        capabilities = (
            "CAP_NET_BIND_SERVICE only (connect_from_port_20)" if keeps_port_20 else "none"
        )
        ctx.log.info(
            "running as %s (uid %d, gid %d), no supplementary groups, capabilities: %s",
            account.name,
            account.uid,
            account.gid,
            capabilities,
        )
    elif os.geteuid() == 0:
        ctx.log.warning(
            "run_as_root = true: instance %s runs as root, with every privilege; "
            "remove run_as_root to run it as nopriv_user (%s)",
            ctx.config.name,
            ctx.config.nopriv_user,
        )


class _Stopper:
    """Stops accepting, then gives running sessions `stopwaitsecs` to finish."""

    def __init__(self, ctx: InstanceContext) -> None:
        self.ctx = ctx
        self.accepting = trio.CancelScope()
        self.sessions = trio.CancelScope()

    def stop(self, why: str) -> None:
        if self.accepting.cancel_called:
            # Asked twice: the admin means now.
            self.ctx.log.info("stopping now (%s): %d session(s) cut", why, self.ctx.sessions)
            self.sessions.cancel()
            return
        wait = self.ctx.config.stopwaitsecs
        self.ctx.log.info(
            "stopping (%s): no new connections; %d session(s) may finish within %d s",
            why,
            self.ctx.sessions,
            wait,
        )
        self.accepting.cancel()
        self.sessions.deadline = trio.current_time() + wait


async def _watch_signals(ctx: InstanceContext, stopper: _Stopper) -> None:
    with trio.open_signal_receiver(
        signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1
    ) as signals:
        async for signum in signals:
            if signum in (signal.SIGHUP, signal.SIGUSR1):
                reopen_logs()
                ctx.log.info("log files reopened")
                continue
            stopper.stop(signal.Signals(signum).name)


def _status(ctx: InstanceContext, stopper: _Stopper) -> dict[str, object]:
    stats = ctx.ports.statistics()
    return {
        "pid": os.getpid(),
        "sessions": ctx.sessions,
        "accepting": not stopper.accepting.cancel_called,
        "leased_now": stats.leased_now,
        "leases_granted": stats.granted,
        "leases_refused": stats.refused,
    }


async def _serve_status_channel(
    ctx: InstanceContext, stream: trio.SocketStream, stopper: _Stopper, address: tuple[str, int]
) -> None:
    """Report readiness to the supervisor, answer its queries; its EOF stops the instance."""

    async def send(message: dict[str, object]) -> None:
        await stream.send_all(jsonlines.encode(message))

    # A line over MAX_STATUS_LINE is not the supervisor's protocol: it is dropped.
    reader = jsonlines.LineReader(MAX_STATUS_LINE)
    try:
        await send({"event": "ready", "pid": os.getpid(), "address": list(address)})
        while True:
            data = await stream.receive_some(MAX_STATUS_LINE)
            if not data:
                break
            for line in reader.feed(data):
                query = jsonlines.decode(line)
                if query is not None and query.get("query") == "status":
                    await send({"id": query.get("id"), **_status(ctx, stopper)})
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    stopper.stop("the supervisor has gone")


async def _create_lock_files(ctx: InstanceContext) -> None:
    """Create the passive range's lock files in the background, so no session pays for it."""
    try:
        # Abandoned on stop: the files are only a head start, and a wide range on a slow
        # disk must not hold up a shutdown.
        await trio.to_thread.run_sync(
            ctx.ports.create_lock_files, limiter=ctx.fs_limiter, abandon_on_cancel=True
        )
    except OSError as exc:
        # Leases create missing files themselves, and report a lease directory they cannot
        # write to; this only loses the head start.
        ctx.logs.data.warning("passive port lock files not created ahead: %s", exc)


async def serve_instance(
    config: InstanceConfig,
    sock: socket.socket,
    *,
    pasv_host: str = "",
    status_fd: int | None = None,
    account: Account | None = None,
    store_dir_fd: int | None = None,
    task_status: trio.TaskStatus[InstanceContext] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve FTP on the listening socket `sock` until SIGTERM/SIGINT (and drain) or cancel.

    Args:
        config: the instance's configuration.
        sock: a listening socket (bound here, or inherited from the supervisor).
        pasv_host: the resolved pasv_address, when pasv_addr_resolve is set.
        status_fd: the supervisor's status channel (a connected stream socket), if any.
        account: the account this process dropped to (privileges.drop), if it did.
        store_dir_fd: the user store's directory, opened before the drop (anchors.anchor).
    """
    return_large_allocations_to_os()
    ctx = make_context(config, pasv_host=pasv_host, store_dir_fd=store_dir_fd)
    sock.setblocking(False)
    address = sock.getsockname()
    channel = None
    if status_fd is not None:
        channel = trio.SocketStream(trio.socket.from_stdlib_socket(socket.socket(fileno=status_fd)))
    ctx.log.info("instance %s listening on %s port %d", config.name, address[0], address[1])
    _log_identity(ctx, account)
    stopper = _Stopper(ctx)
    try:
        async with trio.open_nursery() as services:
            services.start_soon(_watch_signals, ctx, stopper)
            services.start_soon(_create_lock_files, ctx)
            if config.pasv_addr_resolve:
                services.start_soon(_refresh_pasv_address, ctx)
            with stopper.sessions:
                async with trio.open_nursery() as handlers:
                    with stopper.accepting:
                        task_status.started(ctx)
                        if channel is not None:
                            where = (str(address[0]), int(address[1]))
                            services.start_soon(_serve_status_channel, ctx, channel, stopper, where)
                        await accept_sessions(ctx, sock, handlers)
                    trio.lowlevel.notify_closing(sock)
                    sock.close()
                    # Only sessions are left in `handlers`: the drain.
            services.cancel_scope.cancel()
    finally:
        ctx.log.info("instance %s stopped", config.name)
        if channel is not None:
            with trio.CancelScope(shield=True):
                await channel.aclose()
        shutdown_logging()
