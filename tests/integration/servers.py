"""Real ftpsup instances on loopback for the integration tests, and the users they serve.

Each server is the real `python -m ftpsup serve` process. The test binds the listening socket
itself and hands it over with --listen-fd (as the supervisor does), so the port is known and
connections queue in the kernel from the first moment: no start-up race, no sleeping. Waiting
on a server is bounded and watches its state (a log line, a condition), never a duration.
"""

from __future__ import annotations

import ftplib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

USER = "alice"
PASSWORD = "wonder land"  # a space on purpose: PASS takes the whole rest of the line


def _worker_pasv_range() -> tuple[int, int]:
    """This test process's share of 30100-30299 (pytest-xdist runs several at once).

    Without xdist the range is 30100-30199. Under xdist each worker ("gw0", "gw1"...) gets
    its own slice, so one worker's instances never take a passive port another's test counts
    on. test_resources.py draws its own ranges from 30300 up.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = min(100, 200 // max(count, 1))
    low = 30100 + size * (index % max(count, 1))
    return low, low + size - 1


PASV_MIN, PASV_MAX = _worker_pasv_range()


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
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.log_dir.rglob("*")) if p.is_file()
        )

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
        [
            sys.executable,
            "-m",
            "ftpsup",
            "--config-dir",
            str(config_dir),
            "user",
            "add",
            name,
            "--home",
            str(home),
            "--password-stdin",
            *extra,
        ],
        input=(password + "\n").encode(),
        check=True,
        timeout=60,
    )


# users.toml as `ftpsup user add alice` writes it, and the home it names: made once per test
# process (a Python start and a scrypt hash, the dearer half of starting an instance).
_alice_template: tuple[bytes, str] | None = None


def write_alice_store(config_dir: Path, home: Path) -> None:
    """What `add_user(config_dir, USER, PASSWORD, home)` leaves on disk, from the template.

    The stores differ only in the home line (and the salt, which no test compares); the home
    is made as `user add` makes it (0755, and its missing parents 0755). Run by root for
    instances that drop privileges, `user add` also shares the store and the home with their
    account: that case still runs it.
    """
    global _alice_template
    shared = config_dir / "_shared.toml"
    as_root = shared.exists() and tomllib.loads(shared.read_text()).get("run_as_root") is True
    if os.geteuid() == 0 and not as_root:
        add_user(config_dir, USER, PASSWORD, home)
        return
    if _alice_template is None:
        with tempfile.TemporaryDirectory(prefix="ftpsup-store-") as scratch:
            made_home = Path(scratch) / "home" / USER
            add_user(Path(scratch), USER, PASSWORD, made_home)
            _alice_template = ((Path(scratch) / "users.toml").read_bytes(), str(made_home))
    template, template_home = _alice_template
    old = f"home = {_toml_value(template_home)}\n".encode()
    assert template.count(old) == 1, template
    store = template.replace(old, f"home = {_toml_value(str(home))}\n".encode())
    fd = os.open(config_dir / "users.toml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(store)
    missing = [home, *(p for p in home.parents if not p.exists())]
    home.mkdir(parents=True, exist_ok=True)
    for directory in missing:
        directory.chmod(0o755)


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
        # Run as root is how these tests always ran (tmp_path is root's, mode 0700); the
        # privilege drop has its own tests (test_privileges.py).
        "run_as_root": True,
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
        write_alice_store(config_dir, home)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    listener.bind((host, 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ftpsup",
            "serve",
            str(config_dir / "test.toml"),
            "--listen-fd",
            str(listener.fileno()),
        ],
        pass_fds=[listener.fileno()],
        stdin=subprocess.DEVNULL,
    )
    listener.close()
    srv = Server(host, port, home, config_dir, log_dir, process)
    _wait_until_serving(srv)
    return srv


# A Python start under a loaded test run can take seconds; the clients' own timeouts (10 s)
# are meant for the protocol, not for the instance's start.
STARTUP_SECONDS = 60


def _wait_until_serving(srv: Server) -> None:
    """Wait for the instance's "listening on" log line, or for its exit (the test sees that)."""
    wait_until(
        lambda: "listening on" in srv.log_text() or srv.process.poll() is not None,
        f"the instance on {srv.host} to start",
        timeout=STARTUP_SECONDS,
    )


HOSTS = ["127.0.0.1", "::1"]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def login_reply(srv: Server, user: str, password: str, *, timeout: float = 10) -> str:
    """The server's reply to USER/PASS on a fresh connection: the 230, or the error's text."""
    ftp = srv.connect(login=False, timeout=timeout)
    try:
        return ftp.login(user, password)
    except ftplib.Error as exc:
        return str(exc)
    finally:
        ftp.close()


def anonymous_login(srv: Server, *, timeout: float = 10) -> ftplib.FTP:
    """A new connection logged in as anonymous (the server has anonymous_enable)."""
    ftp = srv.connect(login=False, timeout=timeout)
    assert ftp.login("anonymous", "guest@example.com").startswith("230")
    return ftp


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll `condition` until it holds; the server releases resources asynchronously."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def wait_for_log(srv: Server, text: str, *, count: int = 1, timeout: float = 10) -> str:
    """The server's logs once `text` appears `count` times in them (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = srv.log_text()
        if logs.count(text) >= count or time.monotonic() > deadline:
            return logs
        time.sleep(0.05)
