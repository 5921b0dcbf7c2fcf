"""`ftpsup start`: check everything, then run the supervisor, or ask the running one.

Rules:
1. `start` checks everything before anything runs (every file, each selected instance's
   directories) and prints every problem; with a problem nothing is started.
2. `start` without --foreground launches the supervisor as a background process in its own
   session and returns once the supervisor reports how the start went: each instance serving,
   or why it is not. Until then the supervisor writes its report to a pipe, one JSON object
   per line (ftpsup/jsonlines.py): {"message": text} lines, then {"started": status}.
3. Exit status, output streams: as every other command (client.py).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ftpsup import jsonlines
from ftpsup.config.check import blame, check, from_lines
from ftpsup.config.schema import SHARED_FILE, InstanceConfig
from ftpsup.errors import ConfigProblem
from ftpsup.supervisor import ctl, main, spawn
from ftpsup.supervisor.client import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, ask, running, show
from ftpsup.users import accounts

START_SECONDS = 180.0

Preflight = Callable[[InstanceConfig], list[str]]


def start(
    config_dir: Path,
    names: list[str],
    *,
    foreground: bool,
    notify_fd: int | None,
    preflight: Preflight,
) -> int:
    """`ftpsup start all|NAME...`: start the supervisor, or ask the running one to start."""
    if notify_fd is None and running(config_dir):
        response = ask(config_dir, ctl.Request("start", tuple(names)))
        if response is not None:
            return show(response)
    # The same judge as `ftpsup check`, so the two never disagree (config/check.py).
    checked = check([config_dir])
    configs, problems = checked.configs, list(checked.problems)
    selected = [c for c in configs if names in ([], ["all"]) or c.name in names]
    # Every check before any change: a refused start leaves the disk as it was.
    if not checked.errors:
        problems += _problems(selected, preflight)
    if not any(not problem.warning for problem in problems):
        problems += _prepare(selected)
    problems = list(dict.fromkeys(problems))
    for problem in problems:
        print(f"ftpsup: {problem}", file=sys.stderr)
    if any(not problem.warning for problem in problems):
        return EXIT_CONFIG
    if notify_fd is not None:
        return _run_reporting_to(notify_fd, config_dir, names)
    if foreground:
        relay = _Relay()
        try:
            return main.run(
                config_dir, names, report=relay.add, started=relay.flush, log_to_stderr=True
            )
        finally:
            relay.flush(EXIT_FAILED)
    return _launch(config_dir, names, configs[0].log_dir)


class _Relay:
    """The start-up report for the admin: held until the outcome says where it belongs.

    Lines come before the status: every instance's fate and then 0 (stdout, a result), or
    problems and then a failure status or none at all (stderr).
    """

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def flush(self, status: int) -> None:
        stream = sys.stdout if status == EXIT_OK else sys.stderr
        for line in self.lines:
            print(line if status == EXIT_OK else f"ftpsup: {line}", file=stream, flush=True)
        self.lines.clear()


def _problems(configs: list[InstanceConfig], preflight: Preflight) -> list[ConfigProblem]:
    """What stops these instances from starting; looks, changes nothing."""
    problems: list[ConfigProblem] = []
    for config in configs:
        problems += from_lines(config, preflight(config))
        try:
            account = accounts.instance_account(config)
        except accounts.AccountError as exc:
            problems += blame(config, [exc.problem])
            continue
        if account is not None:
            problems += blame(config, accounts.reach_problems(config, account))
    if configs:
        log = configs[0].log_dir / main.LOG_NAME
        if not _can_append(log):
            # log_dir is one setting for all: it belongs in _shared.toml.
            shared = configs[0].config_dir / SHARED_FILE
            where = shared if shared.exists() else configs[0].source
            problems.append(
                ConfigProblem(
                    str(where), "log_dir", f"{log} cannot be written by uid {os.geteuid()}"
                )
            )
    return list(dict.fromkeys(problems))


def _can_append(path: Path) -> bool:
    """Whether this process may append to `path`, or create it in an existing directory."""
    if os.path.lexists(path):
        return os.access(path, os.W_OK)
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    return os.access(parent, os.W_OK | os.X_OK)


def _prepare(configs: list[InstanceConfig]) -> list[ConfigProblem]:
    """Create the lease and log directories and hand them to each instance's account."""
    problems: list[ConfigProblem] = []
    for config in configs:
        found = accounts.prepare_paths(config, accounts.instance_account(config))
        problems += blame(config, found)
    return list(dict.fromkeys(problems))


def _run_reporting_to(fd: int, config_dir: Path, names: list[str]) -> int:
    pipe = os.fdopen(fd, "wb")

    def report(line: str) -> None:
        if not pipe.closed:
            pipe.write(jsonlines.encode({"message": line}))
            pipe.flush()

    def started(status: int) -> None:
        if not pipe.closed:
            pipe.write(jsonlines.encode({"started": status}))
            pipe.close()

    try:
        return main.run(config_dir, names, report=report, started=started)
    finally:
        if not pipe.closed:
            pipe.close()


def _launch(config_dir: Path, names: list[str], log_dir: Path) -> int:
    """Run the supervisor in the background; relay its start-up report."""
    log_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    # The supervisor, root, must not run code from the admin's directory or environment.
    argv = [sys.executable, *spawn.SAFE_FLAGS, "-m", "ftpsup"]
    argv += ["--config-dir", str(config_dir.absolute())]
    argv += ["start", "--foreground", "--notify-fd", str(write_end), *names]
    log_fd = os.open(log_dir / main.LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(log_fd, "ab") as log:
        # Whatever escapes the log (a crash before logging is set up) still lands in the log.
        process = subprocess.Popen(
            argv,
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd="/",
            env=spawn.without_python_variables(os.environ),
        )
    os.close(write_end)
    status: int | None = None
    relay = _Relay()
    with os.fdopen(read_end, "rb") as pipe:
        reader = jsonlines.LineReader(spawn.MAX_MESSAGE)
        deadline = time.monotonic() + START_SECONDS
        while status is None and time.monotonic() < deadline:
            ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            for line in reader.feed(data):
                message = jsonlines.decode(line) or {}
                started = message.get("started")
                if "message" in message:
                    relay.add(str(message["message"]))
                elif isinstance(started, int):
                    status = started
                    break
    relay.flush(EXIT_FAILED if status is None else status)
    if status is not None:
        return status
    try:
        returncode = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        print("ftpsup: the supervisor did not report in time; see ftpsup status", file=sys.stderr)
        return EXIT_FAILED
    return returncode or EXIT_FAILED
