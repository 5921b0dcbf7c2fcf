"""The supervisor process: claim the run directory, bind, start the instances, serve commands.

Rules:
1. Nothing is started unless everything is in order: every file of the configuration
   directory is valid and every listening socket of the selected instances is bound. Otherwise
   every problem is reported and the process ends having changed nothing.
2. One supervisor per state directory: `supervisor.pid` is held with an exclusive flock and
   an abstract socket named after the state_dir is bound for the supervisor's life, so a stale
   pid file (after a crash) never blocks a new start, and a removed state_dir never lets a
   second supervisor start (rundir.py).
3. Leaving cleans up: the instances are stopped (each drains), then the control socket and
   the pid file are removed and the listening sockets closed.
4. Signals: SIGTERM and SIGINT stop everything; SIGHUP reloads the configuration; SIGUSR1
   reopens the log files (the supervisor's and every instance's).
5. Start-up results go to `report` (the `ftpsup start` that launched us, or the terminal).
6. A removed or emptied state_dir is put back within UPKEEP_SECONDS: pid file, control socket
   and lease directory, each logged; commands reach us on the abstract socket meanwhile.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import trio

from ftpsup import listeners as listening
from ftpsup.config.check import check
from ftpsup.config.schema import InstanceConfig
from ftpsup.log_files import reopen_logs, setup_instance_logging, shutdown_logging
from ftpsup.supervisor import changes, ctl, ctl_serve, spawn
from ftpsup.supervisor.manager import Supervisor
from ftpsup.supervisor.rundir import UPKEEP_SECONDS, AlreadyRunning, RunDir
from ftpsup.users.accounts import Account, AccountError, instance_account

LOG_NAME = "supervisor.log"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

Report = Callable[[str], None]
Started = Callable[[int], None]


def load_all(config_dir: Path) -> tuple[list[InstanceConfig], list[str]]:
    """Every instance of `config_dir`, or the errors that stop a start (as `ftpsup check`)."""
    checked = check([config_dir])
    errors = [str(p) for p in checked.errors]
    return ([] if errors else checked.configs), errors


def _account(config: InstanceConfig) -> Account | None:
    try:
        return instance_account(config)
    except AccountError:  # reported at start; the lease directory then stays the supervisor's
        return None


def _setup_log(log_dir: Path, *, to_stderr: bool) -> logging.Logger:
    log = setup_instance_logging("supervisor", log_dir / LOG_NAME)
    if to_stderr:
        echo = logging.StreamHandler(sys.stderr)
        echo.setFormatter(logging.Formatter("ftpsup: %(message)s"))
        log.addHandler(echo)
    return log


def run(
    config_dir: Path,
    names: list[str],
    *,
    report: Report,
    started: Started,
    log_to_stderr: bool = False,
) -> int:
    """Be the supervisor of `config_dir` until told to stop.

    Args:
        config_dir: the configuration directory.
        names: the instances to start now; empty (or ["all"]) for every one.
        report: receives start-up lines for the admin (problems, then each instance's fate).
        started: called once with the start-up status (0: every instance serves, 1: not all)
            when the instances have been started; not called when nothing was started.
        log_to_stderr: also copy the supervisor's log to stderr (foreground use).

    Returns:
        The exit status: 0 after a clean stop, 1 when instances failed, 2 for bad config.
    """
    configs, problems = load_all(config_dir)
    known = {c.name for c in configs}
    wanted = [] if names in ([], ["all"]) else names
    problems += [f"no such instance: {n}" for n in wanted if n not in known]
    if problems:
        for problem in problems:
            report(problem)
        return EXIT_CONFIG
    shared = configs[0]
    try:
        run_dir = RunDir.claim(shared.state_dir)
    except (AlreadyRunning, OSError) as exc:
        report(f"{shared.state_dir}: {exc}")
        return EXIT_FAILED
    try:
        listeners: dict[str, socket.socket] = {}
        for config in configs:
            if wanted and config.name not in wanted:
                continue
            try:
                listeners[config.name] = listening.bind_listener(
                    config.listen_address, config.listen_port
                )
            except listening.ListenError as exc:
                problems.append(f"{config.source}: {exc}")
        if problems:
            for sock in listeners.values():
                sock.close()
            for problem in problems:
                report(problem)
            return EXIT_FAILED
        log = _setup_log(shared.log_dir, to_stderr=log_to_stderr)
        try:
            return trio.run(
                _supervise, config_dir, configs, listeners, wanted, log, report, started, run_dir
            )
        finally:
            shutdown_logging()
    finally:
        run_dir.release()


async def _supervise(
    config_dir: Path,
    configs: list[InstanceConfig],
    listeners: dict[str, socket.socket],
    wanted: list[str],
    log: logging.Logger,
    report: Report,
    on_started: Started,
    run_dir: RunDir,
) -> int:
    sup = Supervisor(config_dir, configs, listeners, log)
    finished = trio.Event()
    log.info("supervisor pid %d starting, config %s", os.getpid(), config_dir)

    async def handle(request: ctl.Request) -> ctl.Response:
        if request.command != "status":  # monitoring polls status: it changes nothing
            log.info("command: %s %s", request.command, " ".join(request.names))
        if request.command == "start":
            return await sup.start(request.names)
        if request.command == "stop":
            return await sup.stop(request.names)
        if request.command == "restart":
            return await changes.restart(sup, request.names)
        if request.command == "reload":
            response = await changes.reload(sup)
            for line in response.messages:
                log.info("reload: %s", line)
            return response
        if request.command == "reopen-logs":
            reopen_logs()
            return sup.reopen_logs()
        if request.command == "shutdown":
            response = await sup.stop(["all"])
            return ctl.Response(response.ok, response.messages, {"pid": os.getpid()})
        return await sup.status()

    def after(request: ctl.Request) -> None:
        if request.command == "shutdown":
            finished.set()

    async def watch_signals() -> None:
        with trio.open_signal_receiver(
            signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1
        ) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    nursery.start_soon(handle, ctl.Request("reload"))
                elif signum == signal.SIGUSR1:
                    await handle(ctl.Request("reopen-logs"))
                else:
                    log.info("signal %s: stopping every instance", signal.Signals(signum).name)
                    spawn.notify_systemd("STOPPING=1")
                    await sup.stop(["all"])
                    finished.set()

    async def serve_socket(
        sock: socket.socket, *, task_status: trio.TaskStatus[trio.CancelScope]
    ) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            try:
                await ctl_serve.serve_control(sock, handle, after)
            finally:
                sock.close()

    async def keep_run_dir(control: trio.CancelScope) -> None:
        lease_dirs = {(c.state_dir / "ports", _account(c)) for c in configs}
        while True:
            await trio.sleep(UPKEEP_SECONDS)
            old_socket = run_dir.control
            for line in await trio.to_thread.run_sync(run_dir.repair, lease_dirs):
                log.warning("state_dir: %s", line)
            if run_dir.control is not old_socket and run_dir.control is not None:
                control.cancel()
                control = await nursery.start(serve_socket, run_dir.control)

    if run_dir.refusal is not None:
        log.warning("%s: %s", sup.state_dir, run_dir.refusal)
    status = EXIT_FAILED
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.serve)
        nursery.start_soon(watch_signals)
        control = await nursery.start(serve_socket, run_dir.bind_control())
        if run_dir.abstract is not None:
            await nursery.start(serve_socket, run_dir.abstract)
        nursery.start_soon(keep_run_dir, control)
        outcome = await sup.start(wanted)
        for line in outcome.messages:
            log.info("start: %s", line)
            report(line)
        status = EXIT_OK if outcome.ok else EXIT_FAILED
        on_started(status)
        spawn.notify_systemd("READY=1")
        await finished.wait()
        nursery.cancel_scope.cancel()
    for m in sup.instances.values():
        for sock in (m.listener, m.pending_listener):
            if sock is not None:
                sock.close()
    log.info("supervisor stopped")
    return status
