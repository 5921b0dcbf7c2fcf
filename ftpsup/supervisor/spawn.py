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
5. A child never runs code from the admin's working directory or environment: it starts in
   `/`, with `python -I` (no script or working directory on sys.path, PYTHON* variables and the
   user's site-packages ignored), and no PYTHON* variable is passed on.
6. A child starts as the supervisor's account and drops to nopriv_user itself once it has
   loaded (ftpsup/server/privileges.py): started as root, it can still read an interpreter
   that only root can read. The directories it writes are made the account's first
   (ftpsup.users.accounts.prepare_paths).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Mapping

import attrs
import trio

from ftpsup import jsonlines
from ftpsup.config.schema import InstanceConfig

MAX_MESSAGE = 64 * 1024
OUTPUT_LINES_KEPT = 5
_HIDDEN_FROM_CHILDREN = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET")


# -I: isolated (implies -E, -P, -s); -u: unbuffered, so instance errors reach the supervisor's
# log at once (PYTHONUNBUFFERED would be ignored under -I).
SAFE_FLAGS = ("-I", "-u")


def child_argv(config: InstanceConfig, listen_fd: int, status_fd: int) -> list[str]:
    """The command line of one instance process."""
    return [
        sys.executable,
        *SAFE_FLAGS,
        "-m",
        "ftpsup",
        "serve",
        str(config.source),
        "--listen-fd",
        str(listen_fd),
        "--status-fd",
        str(status_fd),
    ]


def without_python_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without PYTHON* variables (PYTHONPATH, PYTHONHOME, PYTHONSTARTUP...).

    -I ignores them already; nothing a root process starts should see them either.
    """
    return {k: v for k, v in environ.items() if not k.startswith("PYTHON")}


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The supervisor's environment without what belongs to the supervisor alone."""
    env = without_python_variables(environ)
    return {k: v for k, v in env.items() if k not in _HIDDEN_FROM_CHILDREN}


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
        reader = jsonlines.LineReader(MAX_MESSAGE)
        while True:
            try:
                data = await self.channel.receive_some(MAX_MESSAGE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            for line in reader.feed(data):
                message = jsonlines.decode(line)
                if message is None:
                    continue
                answer_to = message.get("id")
                if isinstance(answer_to, int) and answer_to in self._replies:
                    self._replies.pop(answer_to).send_nowait(message)
                elif "event" in message:
                    await on_event.send(message)
            if reader.overflowed:
                return  # a misbehaving child: stop listening, its exit still counts

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
                await self.channel.send_all(jsonlines.encode({"query": "status", "id": ident}))
            return await receive.receive()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        finally:
            self._replies.pop(ident, None)

    async def serve_output(self, log_line: trio.MemorySendChannel[str]) -> None:
        """Read the process's stdout and stderr to EOF, one line at a time."""
        stream = self.process.stdout
        assert stream is not None
        # The instance runs as nopriv_user: output that never ends a line is logged in
        # pieces of MAX_MESSAGE bytes, not buffered without bound by the supervisor.
        reader = jsonlines.LineReader(MAX_MESSAGE, split_long=True)
        while True:
            data = await stream.receive_some(MAX_MESSAGE)
            if not data:
                break
            for raw in reader.feed(data):
                line = raw.decode("utf-8", "replace").rstrip()
                self.output_tail.append(line)
                await log_line.send(line)
        rest = reader.rest()
        if rest:
            line = rest.decode("utf-8", "replace").rstrip()
            self.output_tail.append(line)
            await log_line.send(line)


async def open_child(config: InstanceConfig, listener: socket.socket) -> Child:
    """Start one instance process serving `listener`, as the supervisor's own account.

    Raises:
        OSError: the process could not be created.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listen_fd, status_fd = listener.fileno(), theirs.fileno()
        process = await trio.lowlevel.open_process(
            child_argv(config, listen_fd, status_fd),
            pass_fds=(listen_fd, status_fd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(os.environ),
            process_group=0,
            cwd="/",
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
