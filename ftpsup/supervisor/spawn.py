"""The supervisor's operating-system edge: listening sockets, instance processes, accounts.

Rules:
1. The supervisor binds every listening socket itself (so port 21 works) and hands the same
   descriptor to each process of the instance, across restarts: the port never closes while
   the instance is meant to serve.
2. Each instance process is `python -m ftpsup serve FILE --listen-fd N --status-fd M`, where M
   is its end of a socketpair. Over it the instance sends one JSON object per line: first
   `{"event": "ready", ...}` once it accepts connections, then a reply to every
   `{"query": "status", "id": K}` the supervisor sends. EOF means the process is gone (and,
   seen from the instance, that the supervisor is gone).
3. A child inherits only the descriptors named here: no other socket, no lease file, no
   systemd variables (LISTEN_FDS, NOTIFY_SOCKET are for the supervisor alone).
4. A child gets its own process group, so a terminal's Ctrl-C reaches only the supervisor,
   which then stops the instances in order.
5. When the supervisor runs as root and the instance names a `nopriv_user`, the child runs as
   that account with no supplementary groups; the directories it writes are made its own first.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import attrs
import trio

import ftpsup
from ftpsup.config import InstanceConfig

MAX_MESSAGE = 64 * 1024
OUTPUT_LINES_KEPT = 5
_HIDDEN_FROM_CHILDREN = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET")


@attrs.frozen
class Account:
    """The unprivileged account an instance process runs as."""

    name: str
    uid: int
    gid: int


def instance_account(config: InstanceConfig) -> Account | None:
    """The account to run the instance as: None means the supervisor's own.

    Only root can switch accounts; a supervisor started by anyone else runs its instances as
    itself (nopriv_user then changes nothing).

    Raises:
        KeyError: nopriv_user names no account on this host.
    """
    if not config.nopriv_user or os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(config.nopriv_user)
    if entry.pw_uid == 0:
        return None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _can_read(path: Path, account: Account) -> bool:
    st = path.stat()
    if st.st_uid == account.uid:
        return bool(st.st_mode & 0o400)
    if st.st_gid == account.gid:
        return bool(st.st_mode & 0o040)
    return bool(st.st_mode & 0o004)


def _blocked_for(path: Path, account: Account, *, read: bool) -> Path | None:
    """The first component of `path` that `account` cannot pass (search, then read/execute)."""
    target = path.resolve()
    for step in [*reversed(target.parents), target]:
        st = step.stat()
        shift = 6 if st.st_uid == account.uid else 3 if st.st_gid == account.gid else 0
        bits = st.st_mode >> shift
        needed = 0o1 | (0o4 if read and step == target else 0)
        if bits & needed != needed:
            return step
    return None


def _runnable_by(account: Account) -> list[str]:
    """Problems that stop `account` from running the interpreter and the ftpsup package."""
    problems = []
    package = Path(ftpsup.__file__).parent
    for what, path, read in (("python", Path(sys.executable), False), ("ftpsup", package, True)):
        blocked = _blocked_for(path, account, read=read)
        if blocked is not None:
            problems.append(
                f"nopriv_user: {account.name} cannot use {path} ({what}): no access to "
                f"{blocked}; install ftpsup where that account can read it, or remove nopriv_user"
            )
    return problems


def _own(path: Path, account: Account | None) -> None:
    if account is not None:
        os.chown(path, account.uid, account.gid, follow_symlinks=False)


def prepare_paths(config: InstanceConfig, account: Account | None) -> list[str]:
    """Create what the instance writes to and give it to `account`; problems as "key: text".

    The lease directory, the instance's log directory (`<log_dir>/<name>`, or the directory
    of a log file set elsewhere) and existing log and lease files are made the account's, so
    an instance that once ran as root still runs after nopriv_user is set.
    """
    problems: list[str] = []
    lease_dir = config.state_dir / "ports"
    targets: list[tuple[str, Path, int]] = [("state_dir", lease_dir, 0o700)]
    log_files = [("vsftpd_log_file", config.vsftpd_log_file)]
    if config.xferlog_enable:
        log_files.append(("xferlog_file", config.xferlog_file))
    own_log_dir = config.log_dir / config.name
    for key, file in log_files:
        targets.append((key, file.parent, 0o750))
    for key, directory, mode in targets:
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=mode)
            if directory in (lease_dir, own_log_dir):
                _own(directory, account)
        except OSError as exc:
            problems.append(f"{key}: cannot create {directory}: {exc.strerror}")
    if account is None:
        return problems
    problems += _runnable_by(account)
    try:
        for lock in lease_dir.glob("*.lock"):
            _own(lock, account)
        for _key, file in log_files:
            if file.exists():
                _own(file, account)
            elif file.parent != own_log_dir:
                # A shared directory stays the admin's: give the instance its file, not the dir.
                file.touch(mode=0o640)
                _own(file, account)
        readable = [("user_db_file", config.user_db_file)]
        if config.ssl_enable:
            # The instance reads its certificate for every TLS connection, as nopriv_user.
            readable += [
                ("rsa_cert_file", config.rsa_cert_file),
                ("rsa_private_key_file", config.rsa_private_key_file),
            ]
        for key, path in readable:
            if path.exists() and not _can_read(path, account):
                problems.append(
                    f"{key}: {path} is not readable by nopriv_user {account.name}; "
                    f"make it theirs: chown {account.name} {path}"
                )
    except FileNotFoundError:
        pass
    except OSError as exc:
        problems.append(f"nopriv_user: cannot hand files to {account.name}: {exc}")
    return problems


def child_argv(config: InstanceConfig, listen_fd: int, status_fd: int) -> list[str]:
    """The command line of one instance process."""
    return [
        sys.executable,
        "-m",
        "ftpsup",
        "serve",
        str(config.source),
        "--listen-fd",
        str(listen_fd),
        "--status-fd",
        str(status_fd),
    ]


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The supervisor's environment without what belongs to the supervisor alone."""
    env = {k: v for k, v in environ.items() if k not in _HIDDEN_FROM_CHILDREN}
    # Instance errors must reach the supervisor's log at once, not at exit.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def exit_reason(returncode: int | None, output: list[str]) -> str:
    """How a process ended, with its last line of output when there is one."""
    if returncode is None:
        text = "ended"
    elif returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        text = f"killed by {name}"
    else:
        text = f"exit status {returncode}"
    last = next((line for line in reversed(output) if line.strip()), "")
    return f"{text}: {last.strip()}" if last and returncode != 0 else text


@attrs.define(eq=False)
class Child:
    """One running instance process, seen from the supervisor."""

    process: trio.Process
    channel: trio.SocketStream
    output_tail: deque[str] = attrs.field(factory=lambda: deque(maxlen=OUTPUT_LINES_KEPT))
    _replies: dict[int, trio.MemorySendChannel[dict[str, object]]] = attrs.field(factory=dict)
    _next_id: int = 0
    _send_lock: trio.Lock = attrs.field(factory=trio.Lock)

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        """Send `signum` unless the process is already gone."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    async def serve_messages(self, on_event: trio.MemorySendChannel[dict[str, object]]) -> None:
        """Read the status channel to EOF: events go to `on_event`, replies to their query."""
        buffer = b""
        while True:
            try:
                data = await self.channel.receive_some(MAX_MESSAGE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            buffer += data
            if len(buffer) > MAX_MESSAGE and b"\n" not in buffer:
                return  # a misbehaving child: stop listening, its exit still counts
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                answer_to = message.get("id")
                if isinstance(answer_to, int) and answer_to in self._replies:
                    self._replies.pop(answer_to).send_nowait(message)
                elif "event" in message:
                    await on_event.send(message)

    async def query(self) -> dict[str, object] | None:
        """Ask the process for its status; None when the channel is closed.

        Cancellation: the caller bounds the wait (the process may hang); a cancelled query
        leaves nothing behind, and a late answer is dropped.
        """
        self._next_id += 1
        ident = self._next_id
        send, receive = trio.open_memory_channel[dict[str, object]](1)
        self._replies[ident] = send
        try:
            async with self._send_lock:
                request = json.dumps({"query": "status", "id": ident}) + "\n"
                await self.channel.send_all(request.encode())
            return await receive.receive()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        finally:
            self._replies.pop(ident, None)

    async def serve_output(self, log_line: trio.MemorySendChannel[str]) -> None:
        """Read the process's stdout and stderr to EOF, one line at a time."""
        stream = self.process.stdout
        assert stream is not None
        buffer = b""
        while True:
            data = await stream.receive_some(MAX_MESSAGE)
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip()
                self.output_tail.append(line)
                await log_line.send(line)
        if buffer:
            line = buffer.decode("utf-8", "replace").rstrip()
            self.output_tail.append(line)
            await log_line.send(line)


async def open_child(
    config: InstanceConfig, listener: socket.socket, account: Account | None
) -> Child:
    """Start one instance process serving `listener`.

    Raises:
        OSError: the process could not be created.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listen_fd, status_fd = listener.fileno(), theirs.fileno()
        # No supplementary groups: root's would otherwise follow the instance.
        user: int | None = None
        group: int | None = None
        groups: list[int] | None = None
        if account is not None:
            user, group, groups = account.uid, account.gid, []
        process = await trio.lowlevel.open_process(
            child_argv(config, listen_fd, status_fd),
            pass_fds=(listen_fd, status_fd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(os.environ),
            process_group=0,
            user=user,
            group=group,
            extra_groups=groups,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return Child(process, trio.SocketStream(trio.socket.from_stdlib_socket(ours)))


def notify_systemd(message: str) -> None:
    """Tell systemd about readiness (sd_notify(3)) when it started us with Type=notify."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        pass
