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
4. Exit status: 0 success, 1 failure, 2 configuration problem, 3 (status) not running.
5. `stop` never reports a stop that did not happen: when no socket answers but a process
   still holds the pid file's lock, it fails and names that pid.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ftpsup import accounts, config_check
from ftpsup.config import InstanceConfig, shared_setting, state_dir_path
from ftpsup.supervisor import ctl, main, rundir, spawn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3
START_SECONDS = 180.0
EXIT_WAIT_SECONDS = 30.0

Preflight = Callable[[InstanceConfig], list[str]]


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
    abstract = ctl.abstract_address(state_dir_path(config_dir))
    for address in (_socket(config_dir), abstract):
        try:
            return ctl.request(address, request, timeout=_wait_limit(config_dir))
        except ctl.NotRunning:
            continue
    return None


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
    # The same judge as `ftpsup check`, so the two never disagree (config_check.py).
    checked = config_check.check([config_dir])
    configs, problems = checked.configs, list(checked.problems)
    selected = [c for c in configs if names in ([], ["all"]) or c.name in names]
    for config in selected if not checked.errors else []:
        found = preflight(config)
        try:
            found += accounts.prepare_paths(config, accounts.instance_account(config))
        except accounts.AccountError as exc:
            found.append(str(exc))
        problems += config_check.from_lines(config, found)
    for problem in dict.fromkeys(problems):
        print(f"ftpsup: {problem}", file=sys.stderr)
    if any(not problem.warning for problem in problems):
        return EXIT_CONFIG
    if notify_fd is not None:
        return _run_reporting_to(notify_fd, config_dir, names)
    if foreground:
        return main.run(
            config_dir,
            names,
            report=lambda line: print(line, flush=True),
            started=lambda status: None,
            log_to_stderr=True,
        )
    return _launch(config_dir, names, configs[0].log_dir)


def _run_reporting_to(fd: int, config_dir: Path, names: list[str]) -> int:
    pipe = os.fdopen(fd, "w", encoding="utf-8")

    def report(line: str) -> None:
        if not pipe.closed:
            pipe.write(json.dumps({"message": line}) + "\n")
            pipe.flush()

    def started(status: int) -> None:
        if not pipe.closed:
            pipe.write(json.dumps({"started": status}) + "\n")
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
    with os.fdopen(read_end, "rb") as pipe:
        buffer = b""
        deadline = time.monotonic() + START_SECONDS
        while status is None and time.monotonic() < deadline:
            ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            buffer += data
            while b"\n" in buffer and status is None:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                if "message" in message:
                    print(message["message"], flush=True)
                elif "started" in message:
                    status = int(message["started"])
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
    response = _ask(config_dir, ctl.Request("shutdown" if everything else "stop", tuple(names)))
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


def simple(config_dir: Path, command: str, names: list[str]) -> int:
    """`restart`, `reload`, `reopen-logs`: one request, its messages printed."""
    response = _ask(config_dir, ctl.Request(command, tuple(names)))
    if response is None:
        _not_running(config_dir)
        return EXIT_NOT_RUNNING
    return _show(response)


def status(config_dir: Path, *, as_json: bool) -> int:
    """`ftpsup status [--json]`."""
    from ftpsup.supervisor.status import format_status

    response = _ask(config_dir, ctl.Request("status"))
    if response is None:
        _not_running(config_dir)
        return EXIT_NOT_RUNNING
    if as_json:
        print(json.dumps(response.data, indent=2))
    else:
        print(format_status(response.data))
    return EXIT_OK if response.ok else EXIT_FAILED
