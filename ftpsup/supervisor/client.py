"""The command-line side of the supervisor: talk to the running one (starting it: launch.py).

Rules:
1. Every command but start is one request on the control socket, with a bounded wait. When the
   socket file is gone (a removed state_dir), the request goes to the supervisor's abstract
   socket instead (ctl.py).
2. Exit status: 0 success, 1 failure, 2 configuration problem, 3 not running (status,
   restart, reload, reopen-logs). `status` exits 1 while an instance is FATAL or BACKOFF,
   and 4 when the supervisor cannot be asked (its socket is another account's, or it does
   not answer), so a monitoring script needs only the exit status.
3. `stop` never reports a stop that did not happen: when no socket answers but a process
   still holds the pid file's lock, it fails and names that pid. While instances drain it
   prints their progress (stderr) every PROGRESS_SECONDS.
4. Results go to stdout; errors, problems and progress go to stderr.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pwd
import sys
import time
from pathlib import Path

from ftpsup.config.load import shared_setting, state_dir_path
from ftpsup.errors import SupervisorUnreachable
from ftpsup.supervisor import ctl, rundir
from ftpsup.supervisor.status import draining_lines, format_status, troubled_instances

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3
EXIT_WAIT_SECONDS = 30.0
PROGRESS_SECONDS = 1.0
# A drain line is repeated this often even when nothing changed, so the countdown shows.
PROGRESS_REPEAT_SECONDS = 5.0


def _socket(config_dir: Path) -> Path:
    return ctl.socket_path(state_dir_path(config_dir))


def _wait_limit(config_dir: Path) -> float:
    """How long a command may take: the longest drain plus the start and kill margins."""
    # stopwaitsecs is shared-only: _shared.toml's value is every instance's.
    longest = shared_setting(config_dir, "stopwaitsecs")
    if not isinstance(longest, int) or isinstance(longest, bool) or longest < 0:
        longest = 300
    return float(longest) + 120.0


def show(response: ctl.Response) -> int:
    stream = sys.stdout if response.ok else sys.stderr
    for line in response.messages:
        print(line, file=stream)
    return EXIT_OK if response.ok else EXIT_FAILED


def ask(config_dir: Path, request: ctl.Request) -> ctl.Response | None:
    """The supervisor's answer; None when none runs.

    Raises:
        SupervisorUnreachable: the control socket is another account's, or no answer came in time.
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
            raise SupervisorUnreachable(
                f"{_socket(config_dir)}: permission denied: the supervisor runs as {owner}; "
                f"run this command as {who}"
            ) from None
        except TimeoutError:
            raise SupervisorUnreachable(
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


def running(config_dir: Path) -> bool:
    abstract = ctl.abstract_address(state_dir_path(config_dir))
    return ctl.is_running(_socket(config_dir)) or ctl.holder_uid(abstract) in (0, os.geteuid())


def _not_running(config_dir: Path) -> None:
    print(f"ftpsup: the supervisor is not running (no {_socket(config_dir)})", file=sys.stderr)


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
    code = show(response)
    pid = response.data.get("pid")
    if everything and isinstance(pid, int) and not _wait_gone(pid):
        print(f"ftpsup: supervisor pid {pid} is still running", file=sys.stderr)
        return EXIT_FAILED
    return code


def _ask_showing_drain(config_dir: Path, request: ctl.Request) -> ctl.Response | None:
    """`ask`, printing which instances drain, their sessions and time left, until answered."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(ask, config_dir, request)
        # Per process: the sessions last shown and when; a line when they change, or to
        # count down every PROGRESS_REPEAT_SECONDS.
        shown: dict[str, tuple[object, float]] = {}
        while True:
            try:
                return answer.result(timeout=PROGRESS_SECONDS)
            except concurrent.futures.TimeoutError:
                pass
            try:
                data = ask(config_dir, ctl.Request("status"))
            except SupervisorUnreachable:
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
    response = ask(config_dir, ctl.Request(command, tuple(names)))
    if response is None:
        _not_running(config_dir)
        return EXIT_NOT_RUNNING
    return show(response)


def status(config_dir: Path, *, as_json: bool) -> int:
    """`ftpsup status [--json]`."""
    response = ask(config_dir, ctl.Request("status"))
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
