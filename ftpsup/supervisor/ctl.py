"""The control socket: how `ftpsup status`, `restart ipv6` and the rest reach the supervisor.

The socket is `<state_dir>/supervisor.sock`, and the same service listens on a Linux abstract
socket named after the state_dir path (`abstract_address`): a name with no file, so a removed
state_dir never leaves a running supervisor unreachable. A client sends one JSON request line,
`{"command": "restart", "names": ["ipv6"]}`, and reads one JSON response line,
`{"ok": true, "messages": [...], "data": {...}}`; then the connection closes.

Rules:
1. Only the supervisor's owner (and root) may use it: the socket file is mode 0600 and every
   connection's peer credentials (SO_PEERCRED) are checked as well.
2. Input is bounded: a request line over MAX_REQUEST bytes is refused.
3. A client never waits forever: every request has a timeout.
4. The client checks the server's credentials too: anyone may bind an abstract name, so an
   answer counts only from root or the client's own account.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ftpsup import jsonlines

if TYPE_CHECKING:
    # Only for a type: the command line asks the supervisor without loading trio
    # (ctl_serve.py is the supervisor's side).
    import trio

SOCKET_NAME = "supervisor.sock"
PID_NAME = "supervisor.pid"
MAX_REQUEST = 64 * 1024
MAX_RESPONSE = 16 * 1024 * 1024
COMMANDS = frozenset({"start", "stop", "restart", "reload", "status", "reopen-logs", "shutdown"})


class NotRunning(Exception):
    """No supervisor answers on the control socket."""


@attrs.frozen
class Request:
    """One command for the supervisor."""

    command: str
    names: tuple[str, ...] = ()


@attrs.frozen
class Response:
    """The supervisor's answer: success, lines to show the admin, and structured data."""

    ok: bool
    messages: tuple[str, ...] = ()
    data: dict[str, object] = attrs.field(factory=dict)

    def to_line(self) -> bytes:
        body = {"ok": self.ok, "messages": list(self.messages), "data": self.data}
        return jsonlines.encode(body)

    @classmethod
    def from_line(cls, line: bytes) -> Response:
        body = jsonlines.decode(line)
        if body is None:
            raise ValueError("response is not a JSON object")
        messages = body.get("messages", [])
        data = body.get("data", {})
        return cls(
            ok=bool(body.get("ok")),
            messages=tuple(str(m) for m in messages) if isinstance(messages, list) else (),
            data=data if isinstance(data, dict) else {},
        )


def parse_request(line: bytes) -> Request:
    """Decode one request line.

    Raises:
        ValueError: not a valid request.
    """
    body = jsonlines.decode(line)
    if body is None:
        raise ValueError("not a JSON object")
    if body.get("command") not in COMMANDS:
        raise ValueError("unknown command")
    names = body.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("names must be a list of strings")
    return Request(str(body["command"]), tuple(names))


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


def pid_path(state_dir: Path) -> Path:
    return state_dir / PID_NAME


def abstract_address(state_dir: Path) -> str:
    """The abstract socket name of the supervisor of `state_dir` (no file behind it)."""
    digest = hashlib.sha256(os.fsencode(os.path.abspath(state_dir))).hexdigest()[:32]
    return f"\0ftpsup-supervisor-{digest}"


def bind_abstract_socket(state_dir: Path) -> socket.socket:
    """Listen on the abstract name of `state_dir`.

    Raises:
        OSError: EADDRINUSE when someone already listens on it.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(abstract_address(state_dir))
        sock.listen(64)
    except BaseException:
        sock.close()
        raise
    return sock


def holder_uid(address: str) -> int | None:
    """The account listening on the abstract `address`, or None when nobody does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(address)
        except OSError:
            return None
        return peer_uid(sock)


def bind_control_socket(path: Path) -> socket.socket:
    """Listen on the control socket, replacing a stale one; only the owner may connect.

    The caller holds the pid file lock, so a socket file found here belongs to a dead
    supervisor.
    """
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the file is born 0600: no window where others may connect
    try:
        sock.bind(str(path))
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock


def peer_uid(sock: socket.socket | trio.socket.SocketType) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def request(path: Path | str, req: Request, *, timeout: float) -> Response:
    """Send one request and wait for the answer (blocking; for the command line).

    Args:
        path: the control socket file, or an abstract address.

    Raises:
        NotRunning: nothing listens on `path`, or an account other than root or ours does.
        TimeoutError: no answer within `timeout` seconds.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NotRunning(str(path)) from exc
        if peer_uid(sock) not in {0, os.geteuid()}:
            raise NotRunning(f"{path!r} is held by another account")
        body = {"command": req.command, "names": list(req.names)}
        sock.sendall(jsonlines.encode(body))
        reader = jsonlines.LineReader(MAX_RESPONSE)
        lines: list[bytes] = []
        while not lines and not reader.overflowed:
            chunk = sock.recv(65536)
            if not chunk:
                break
            lines = reader.feed(chunk)
    if reader.overflowed:
        raise ValueError(f"response longer than {MAX_RESPONSE} bytes")
    line = lines[0] if lines else reader.rest()
    if not line:
        raise NotRunning(str(path))
    return Response.from_line(line)


def is_running(path: Path) -> bool:
    """Whether a supervisor answers on the control socket at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True
