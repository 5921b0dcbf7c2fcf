"""The command-line side of the supervisor: start it (in the background), or talk to it.

Rules:
1. `start` checks everything before anything runs (every file, each selected instance's
   directories) and prints every problem; with a problem nothing is started.
2. `start` without --foreground launches the supervisor as a background process in its own
   session and returns once the supervisor reports how the start went: each instance serving,
   or why it is not. Until then the supervisor writes its report to a pipe, one JSON object
   per line: {"message": text} lines, then {"started": status}.
3. Every other command is one request on the control socket, with a bounded wait. When the
   socket file is gone (a removed state_dir), the request goes to the supervisor's abstract
   socket instead (ctl.py).
4. Exit status: 0 success, 1 failure, 2 configuration problem, 3 not running (status,
   restart, reload, reopen-logs). `status` exits 1 while an instance is FATAL or BACKOFF,
   and 4 when the supervisor cannot be asked (its socket is another account's, or it does
   not answer), so a monitoring script needs only the exit status.
5. `stop` never reports a stop that did not happen: when no socket answers but a process
   still holds the pid file's lock, it fails and names that pid. While instances drain it
   prints their progress (stderr) every PROGRESS_SECONDS.
6. Results go to stdout; errors, problems and progress go to stderr.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pwd
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ftpsup import jsonlines
from ftpsup.config.check import blame, check, from_lines
from ftpsup.config.load import shared_setting, state_dir_path
from ftpsup.config.schema import SHARED_FILE, InstanceConfig
from ftpsup.errors import ConfigProblem
from ftpsup.supervisor import ctl, main, rundir, spawn
from ftpsup.supervisor.status import draining_lines, format_status, troubled_instances
from ftpsup.users import accounts

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3
EXIT_UNREACHABLE = 4
START_SECONDS = 180.0
EXIT_WAIT_SECONDS = 30.0
PROGRESS_SECONDS = 1.0
# A drain line is repeated this often even when nothing changed, so the countdown shows.
PROGRESS_REPEAT_SECONDS = 5.0

Preflight = Callable[[InstanceConfig], list[str]]


class Unreachable(Exception):
    """The supervisor is there but cannot be asked; the message says why and what to do."""

    exit_status = EXIT_UNREACHABLE


def _socket(config_dir: Path) -> Path:
    return ctl.socket_path(state_dir_path(config_dir))


def _wait_limit(config_dir: Path) -> float:
    """How long a command may take: the longest drain plus the start and kill margins."""
    # stopwaitsecs is shared-only: _shared.toml's value is every instance's.
    longest = shared_setting(config_dir, "stopwaitsecs")
    if not isinstance(longest, int) or isinstance(longest, bool) or longest < 0:
        longest = 300
    return float(longest) + 120.0


def _show(response: ctl.Response) -> int:
    stream = sys.stdout if response.ok else sys.stderr
    for line in response.messages:
        print(line, file=stream)
    return EXIT_OK if response.ok else EXIT_FAILED


def _ask(config_dir: Path, request: ctl.Request) -> ctl.Response | None:
    """The supervisor's answer; None when none runs.

    Raises:
        Unreachable: the control socket is another account's, or no answer came in time.
    """
    abstract = ctl.abstract_address(state_dir_path(config_dir))
    timeout = _wait_limit(config_dir)
    for address in (_socket(config_dir), abstract):
        try:
            return ctl.request(address, request, timeout=timeout)
        except ctl.NotRunning:
            continue
        except PermissionError:
            owner = _owner(_socket(config_dir))
            who = owner if owner == "root" else f"{owner} or root"
            raise Unreachable(
                f"{_socket(config_dir)}: permission denied: the supervisor runs as {owner}; "
                f"run this command as {who}"
            ) from None
        except TimeoutError:
            raise Unreachable(
                f"the supervisor did not answer {request.command} within {timeout:.0f} s "
                f"on {address if isinstance(address, Path) else 'its abstract socket'}"
            ) from None
    return None


def _owner(path: Path) -> str:
    try:
        uid = path.stat().st_uid
    except OSError:
        return "another account"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _running(config_dir: Path) -> bool:
    abstract = ctl.abstract_address(state_dir_path(config_dir))
    return ctl.is_running(_socket(config_dir)) or ctl.holder_uid(abstract) in (0, os.geteuid())


def _not_running(config_dir: Path) -> None:
    print(f"ftpsup: the supervisor is not running (no {_socket(config_dir)})", file=sys.stderr)


def start(
    config_dir: Path,
    names: list[str],
    *,
    foreground: bool,
    notify_fd: int | None,
    preflight: Preflight,
) -> int:
    """`ftpsup start all|NAME...`: start the supervisor, or ask the running one to start."""
    if notify_fd is None and _running(config_dir):
        response = _ask(config_dir, ctl.Request("start", tuple(names)))
        if response is not None:
            return _show(response)
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


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        if _is_zombie(pid):
            return True
        time.sleep(0.05)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stop(config_dir: Path, names: list[str]) -> int:
    """`ftpsup stop all|NAME...`: drain and stop instances; `all` ends the supervisor too."""
    everything = names in ([], ["all"])
    request = ctl.Request("shutdown" if everything else "stop", tuple(names))
    response = _ask_showing_drain(config_dir, request)
    if response is None:
        state_dir = state_dir_path(config_dir)
        holder = rundir.pid_file_holder(state_dir)
        if holder is not None:
            print(
                f"ftpsup: a supervisor (pid {holder}) holds {ctl.pid_path(state_dir)} but does "
                f"not answer on {_socket(config_dir)} or its abstract socket; nothing was "
                f"stopped (kill -TERM {holder} stops it)",
                file=sys.stderr,
            )
            return EXIT_FAILED
        _not_running(config_dir)
        return EXIT_OK
    code = _show(response)
    pid = response.data.get("pid")
    if everything and isinstance(pid, int) and not _wait_gone(pid):
        print(f"ftpsup: supervisor pid {pid} is still running", file=sys.stderr)
        return EXIT_FAILED
    return code


def _ask_showing_drain(config_dir: Path, request: ctl.Request) -> ctl.Response | None:
    """`_ask`, printing which instances drain, their sessions and time left, until answered."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(_ask, config_dir, request)
        # Per process: the sessions last shown and when; a line when they change, or to
        # count down every PROGRESS_REPEAT_SECONDS.
        shown: dict[str, tuple[object, float]] = {}
        while True:
            try:
                return answer.result(timeout=PROGRESS_SECONDS)
            except concurrent.futures.TimeoutError:
                pass
            try:
                data = _ask(config_dir, ctl.Request("status"))
            except Unreachable:
                continue
            now = time.monotonic()
            drains = draining_lines(data.data if data is not None else {})
            for key, (sessions, line) in drains.items():
                last = shown.get(key)
                if last is None or last[0] != sessions or now - last[1] >= PROGRESS_REPEAT_SECONDS:
                    print(f"ftpsup: {line}", file=sys.stderr, flush=True)
                    shown[key] = (sessions, now)


def simple(config_dir: Path, command: str, names: list[str]) -> int:
    """`restart`, `reload`, `reopen-logs`: one request, its messages printed."""
    response = _ask(config_dir, ctl.Request(command, tuple(names)))
    if response is None:
        _not_running(config_dir)
        return EXIT_NOT_RUNNING
    return _show(response)


def status(config_dir: Path, *, as_json: bool) -> int:
    """`ftpsup status [--json]`."""
    response = _ask(config_dir, ctl.Request("status"))
    if response is None:
        _not_running(config_dir)
        return EXIT_NOT_RUNNING
    if as_json:
        print(json.dumps(response.data, indent=2))
    else:
        print(format_status(response.data))
    troubled = troubled_instances(response.data)
    if troubled:
        print(f"ftpsup: not serving: {', '.join(troubled)}", file=sys.stderr)
    return EXIT_OK if response.ok and not troubled else EXIT_FAILED
