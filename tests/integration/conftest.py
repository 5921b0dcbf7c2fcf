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
