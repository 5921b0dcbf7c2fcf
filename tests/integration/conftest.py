"""Real ftpsup instances on loopback for the integration tests.

Each server is the real `python -m ftpsup serve` process. The test binds the listening socket
itself and hands it over with --listen-fd (as the supervisor does), so the port is known and
connections queue in the kernel from the first moment: no start-up race, no sleeping.
"""

from __future__ import annotations

import ftplib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

USER = "alice"
PASSWORD = "wonder land"  # a space on purpose: PASS takes the whole rest of the line
PASV_MIN, PASV_MAX = 30100, 30199


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@attrs.define
class Server:
    host: str
    port: int
    home: Path
    config_dir: Path
    log_dir: Path
    process: subprocess.Popen[bytes]
    user: str = USER
    password: str = PASSWORD

    @property
    def url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def url(self, path: str = "/") -> str:
        return f"ftp://{self.user}:{PASSWORD.replace(' ', '%20')}@{self.url_host}:{self.port}{path}"

    def connect(self, *, login: bool = True, timeout: float = 10) -> ftplib.FTP:
        ftp = ftplib.FTP(timeout=timeout)
        ftp.connect(self.host, self.port)
        if login:
            ftp.login(self.user, self.password)
        return ftp

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.rglob("*")) if p.is_file())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def add_user(config_dir: Path, name: str, password: str, home: Path, *extra: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "ftpsup", "--config-dir", str(config_dir), "user", "add", name,
         "--home", str(home), "--password-stdin", *extra],
        input=(password + "\n").encode(),
        check=True,
        timeout=60,
    )


def start_server(base: Path, host: str, **settings: Any) -> Server:
    """Write a config directory under `base`, make user alice, and start one instance."""
    config_dir = base / "etc"
    config_dir.mkdir(parents=True, exist_ok=True)
    home = base / "home" / USER
    log_dir = base / "log"
    shared = {
        "user_db_file": str(config_dir / "users.toml"),
        "state_dir": str(base / "run"),
        "log_dir": str(log_dir),
        "pasv_min_port": PASV_MIN,
        "pasv_max_port": PASV_MAX,
    }
    instance: dict[str, Any] = {
        "listen_address": host,
        "listen_port": 2121,
        "write_enable": True,
        "local_umask": "022",
        "idle_session_timeout": 60,
        "data_connection_timeout": 30,
        "accept_timeout": 10,
        "connect_timeout": 10,
        "delay_failed_login": 0,
        "xferlog_enable": True,
        "xferlog_std_format": True,
        "log_ftp_protocol": True,
    }
    instance.update(settings)
    (config_dir / "_shared.toml").write_text(
        "".join(f"{k} = {_toml_value(v)}\n" for k, v in shared.items())
    )
    (config_dir / "test.toml").write_text(
        "".join(f"{k} = {_toml_value(v)}\n" for k, v in instance.items())
    )
    if not (config_dir / "users.toml").exists():
        add_user(config_dir, USER, PASSWORD, home)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    listener.bind((host, 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "ftpsup", "serve", str(config_dir / "test.toml"),
         "--listen-fd", str(listener.fileno())],
        pass_fds=[listener.fileno()],
        stdin=subprocess.DEVNULL,
    )
    listener.close()
    return Server(host, port, home, config_dir, log_dir, process)


HOSTS = ["127.0.0.1", "::1"]


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One instance per module and address family, with user alice."""
    srv = start_server(tmp_path_factory.mktemp("srv"), request.param)
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start instances with particular settings; each is stopped at the end of the test."""
    started: list[Server] = []

    def factory(host: str = "127.0.0.1", **settings: Any) -> Server:
        srv = start_server(tmp_path / f"s{len(started)}", host, **settings)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture
def workdir(server: Server, request: pytest.FixtureRequest) -> str:
    """A fresh directory in alice's home for one test, as a virtual path."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:80]
    path = server.home / name
    path.mkdir(parents=True, exist_ok=True)
    return "/" + name


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


__all__ = ["HOSTS", "PASSWORD", "USER", "Server", "add_user", "dedent", "start_server"]

os.environ.setdefault("PYTHONUNBUFFERED", "1")


# -- hand-made control and data connections -----------------------------------------------
# ftplib picks the data mode itself (PASV on IPv4, EPSV on IPv6); these helpers let a test
# choose PASV, EPSV, PORT or EPRT, read a data connection byte for byte, and speak raw FTP.

DATA_MODES = ["PASV", "EPSV", "PORT", "EPRT"]
IPV4_ONLY_MODES = frozenset({"PASV", "PORT"})
# Upper bound for anything read in one go: no test file comes near it.
MAX_READ = 64 * 1024 * 1024


def recv_all(conn: socket.socket, *, limit: int = MAX_READ, timeout: float = 30) -> bytes:
    """Read a data connection to EOF, within `timeout` seconds and `limit` bytes."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("data connection not closed in time")
        conn.settimeout(remaining)
        chunk = conn.recv(1024 * 1024)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise AssertionError(f"more than {limit} bytes on the data connection")


def open_data(
    ftp: ftplib.FTP, mode: str, command: str, *, rcvbuf: int | None = None, timeout: float = 10
) -> tuple[socket.socket, str]:
    """Open the data connection for `command` in `mode` (PASV, EPSV, PORT or EPRT) by hand.

    Returns:
        The connected data socket and the server's 1xx reply to `command`.

    Raises:
        ftplib.Error: the server refused the mode or the command (the socket is closed).
    """
    assert ftp.sock is not None
    family = ftp.sock.family
    host = str(ftp.sock.getpeername()[0])
    conn = socket.socket(family, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    if rcvbuf is not None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        if mode in ("PASV", "EPSV"):
            answer = ftp.sendcmd(mode)
            if mode == "PASV":
                port = ftplib.parse227(answer)[1]
            else:
                port = ftplib.parse229(answer, (host, ftp.port))[1]
            conn.connect((host, port))
            return conn, _preliminary(ftp.sendcmd(command))
        conn.bind((host, 0))
        conn.listen(1)
        port = conn.getsockname()[1]
        if mode == "PORT":
            ftp.sendcmd(f"PORT {host.replace('.', ',')},{port >> 8},{port & 0xFF}")
        else:
            ftp.sendcmd(f"EPRT |{2 if family == socket.AF_INET6 else 1}|{host}|{port}|")
        preliminary = _preliminary(ftp.sendcmd(command))
        accepted, _ = conn.accept()
        accepted.settimeout(timeout)
        conn.close()
        return accepted, preliminary
    except BaseException:
        conn.close()
        raise


def _preliminary(answer: str) -> str:
    if not answer.startswith("1"):
        raise ftplib.error_reply(answer)
    return answer


def upload(ftp: ftplib.FTP, mode: str, command: str, data: bytes) -> str:
    """Send `data` for STOR/APPE/STOU in `mode`; returns the final reply (226 expected)."""
    conn, _ = open_data(ftp, mode, command)
    with conn:
        conn.sendall(data)
    return ftp.voidresp()


def download(ftp: ftplib.FTP, mode: str, command: str) -> bytes:
    """Read what RETR/LIST/NLST/MLSD sends in `mode`; checks the final reply is 2xx."""
    conn, _ = open_data(ftp, mode, command)
    with conn:
        data = recv_all(conn)
    ftp.voidresp()
    return data


@attrs.frozen
class FtpReply:
    """One reply as read off the wire: its code and its lines without CRLF."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class RawControl:
    """A control connection that sends exactly the bytes given and reads whole replies."""

    MAX_LINE = 64 * 1024
    MAX_LINES = 10_000

    def __init__(self, host: str, port: int, *, timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""

    def __enter__(self) -> RawControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str | bytes) -> FtpReply:
        """Send one command line (CRLF added) and read its reply."""
        raw = line.encode() if isinstance(line, str) else line
        self.send(raw + b"\r\n")
        return self.reply()

    def login(self, user: str = USER, password: str = PASSWORD) -> FtpReply:
        assert self.command(f"USER {user}").code == 331
        return self.command(f"PASS {password}")

    def _line(self) -> str:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > self.MAX_LINE:
                raise AssertionError("reply line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("control connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode("utf-8", errors="surrogateescape")

    def reply(self) -> FtpReply:
        """Read one reply, single or multi-line (RFC 959 §4.2)."""
        first = self._line()
        code = int(first[:3])
        lines = [first[4:]]
        if first[3:4] == "-":
            for _ in range(self.MAX_LINES):
                line = self._line()
                if line.startswith(f"{code} "):
                    lines.append(line[4:])
                    return FtpReply(code, tuple(lines))
                lines.append(line)
            raise AssertionError("multi-line reply never ended")
        return FtpReply(code, tuple(lines))

    def is_closed(self, timeout: float = 5) -> bool:
        """True when the server closes the connection within `timeout` (after any unread reply)."""
        if self._buffer:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
