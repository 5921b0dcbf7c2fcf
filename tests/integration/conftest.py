"""Real ftpsup instances on loopback for the integration tests.

Each server is the real `python -m ftpsup serve` process. The test binds the listening socket
itself and hands it over with --listen-fd (as the supervisor does), so the port is known and
connections queue in the kernel from the first moment: no start-up race, no sleeping.
"""

from __future__ import annotations

import ftplib
import hashlib
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

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
    return Server(host, port, home, config_dir, log_dir, process)


HOSTS = ["127.0.0.1", "::1"]


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
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


__all__ = [
    "HOSTS",
    "PASSWORD",
    "USER",
    "Server",
    "add_user",
    "dedent",
    "start_server",
    "write_alice_store",
]

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


# -- FTPS (RFC 4217) ----------------------------------------------------------------------
# A self-signed certificate per test session (never committed), instances that serve FTPS as
# the shipped ones do, and ftplib clients that resume the control connection's TLS session on
# their data connections, as FileZilla, WinSCP, curl and lftp do (ftplib alone does not).


@attrs.frozen
class CertPair:
    """A certificate file and its private key file."""

    cert: Path
    key: Path


def write_cert_pair(
    directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"), *, days: int = 825
) -> CertPair:
    """A fresh self-signed certificate and key in `directory`, made by ftpsup itself."""
    from ftpsup.tls.certs import write_self_signed

    pair = CertPair(directory / "cert.pem", directory / "key.pem")
    write_self_signed(pair.cert, pair.key, names, days=days)
    return pair


def tls_settings(pair: CertPair, **overrides: Any) -> dict[str, Any]:
    """Instance keys for explicit FTPS as the shipped instances serve it: forced, TLS 1.2+."""
    settings: dict[str, Any] = {
        "ssl_enable": True,
        "force_local_logins_ssl": True,
        "force_local_data_ssl": True,
        "ssl_tlsv1_2": True,
        "ssl_tlsv1_3": True,
        "ssl_ciphers": "HIGH",
        "rsa_cert_file": str(pair.cert),
        "rsa_private_key_file": str(pair.key),
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    """One self-signed certificate for every FTPS instance of the test session."""
    return write_cert_pair(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_cert: CertPair
) -> Iterator[Server]:
    """One explicit-FTPS instance per module and address family (forced logins and data)."""
    srv = start_server(tmp_path_factory.mktemp("tls_srv"), request.param, **tls_settings(tls_cert))
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture
def tls_workdir(tls_server: Server, request: pytest.FixtureRequest) -> str:
    """A fresh directory in alice's home on `tls_server`, as a virtual path."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:80]
    (tls_server.home / name).mkdir(parents=True, exist_ok=True)
    return "/" + name


def client_context(
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    """A client context that accepts the test's self-signed certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = minimum
    ctx.maximum_version = maximum
    return ctx


class ReusingFTP_TLS(ftplib.FTP_TLS):  # noqa: N801 (named after ftplib.FTP_TLS)
    """FTP_TLS whose data connections resume the control connection's TLS session.

    `session_source`, when set, is another control connection whose session is presented
    instead (to prove the server refuses a session that is not this connection's own).
    """

    session_source: ftplib.FTP_TLS | None = None

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            source = self.session_source or self
            assert isinstance(source.sock, ssl.SSLSocket)
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=source.sock.session
            )
        return conn, size


class ImplicitFTP_TLS(ReusingFTP_TLS):  # noqa: N801
    """Implicit FTPS: TLS from the first byte, before the greeting (no AUTH)."""

    def connect(
        self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None
    ) -> str:
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        plain = socket.create_connection((self.host, self.port), self.timeout)
        self.af = plain.family
        self.sock = self.context.wrap_socket(plain, server_hostname=self.host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def connect_tls(
    srv: Server,
    *,
    implicit: bool = False,
    context: ssl.SSLContext | None = None,
    login: bool = True,
    prot_p: bool = True,
    timeout: float = 10,
) -> ReusingFTP_TLS:
    """A resuming FTPS client on `srv`: AUTH TLS (or implicit TLS), login, PBSZ 0, PROT P."""
    cls = ImplicitFTP_TLS if implicit else ReusingFTP_TLS
    ftp = cls(context=context or client_context(), timeout=timeout)
    try:
        ftp.connect(srv.host, srv.port)
        if not implicit:
            ftp.auth()
        if login:
            ftp.login(srv.user, srv.password)
            if prot_p:
                ftp.prot_p()
    except BaseException:
        ftp.close()
        raise
    return ftp


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tls_payload(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes with CR, LF and NUL up front: any conversion changes the sha256."""
    return (b"line\r\nnext\nlast\r\x00" + random.Random(size * 1000 + seed).randbytes(size))[:size]


def send_line(ftp: ftplib.FTP, line: str) -> str:
    """Send one command and return the whole reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()


def wrap_data(
    ftp: ftplib.FTP_TLS, conn: socket.socket, *, session: ssl.SSLSession | None
) -> ssl.SSLSocket:
    """Make a data socket opened by `open_data` TLS, resuming `session` (None: a full handshake)."""
    return ftp.context.wrap_socket(conn, server_hostname=ftp.host, session=session)


def control_session(ftp: ftplib.FTP) -> ssl.SSLSession | None:
    assert isinstance(ftp.sock, ssl.SSLSocket)
    return ftp.sock.session


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


def read_until_closed(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection, within `timeout`."""
    deadline = time.monotonic() + timeout
    received = b""
    while (remaining := deadline - time.monotonic()) > 0 and len(received) < 1 << 20:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept the connection open; it sent {received[:200]!r}")


def wait_for_log(srv: Server, text: str, *, count: int = 1, timeout: float = 10) -> str:
    """The server's logs once `text` appears `count` times in them (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = srv.log_text()
        if logs.count(text) >= count or time.monotonic() > deadline:
            return logs
        time.sleep(0.05)


CURL_MAX_TIME = 60
LFTP_TLS_SETTINGS = (
    "set net:max-retries 1",
    "set net:reconnect-interval-base 1",
    "set net:timeout 10",
    "set cmd:fail-exit yes",
    "set cmd:interactive no",
    "set xfer:clobber yes",
    "set xfer:log no",
    "set cmd:save-cwd-history no",
    "set ftp:ssl-allow yes",
    "set ftp:ssl-force true",
    "set ftp:ssl-protect-data true",
    "set ftp:ssl-protect-list true",
    "set ssl:verify-certificate no",
)


@attrs.frozen
class ClientRun:
    """The outcome of one curl or lftp process, with the FTP commands it sent."""

    returncode: int
    stdout: bytes
    stderr: str
    sent: tuple[str, ...]


def run_curl(*args: str, timeout: float = CURL_MAX_TIME) -> ClientRun:
    """curl with bounded time, --verbose trace parsed for the commands it sent."""
    command = [
        "curl", "--silent", "--show-error", "--verbose", "--globoff",
        "--connect-timeout", "10", "--max-time", str(int(timeout)), *args,
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, timeout=timeout + 30, check=False)
    stderr = proc.stderr.decode("utf-8", "replace")
    sent = tuple(line[2:] for line in stderr.splitlines() if line.startswith("> "))
    return ClientRun(proc.returncode, proc.stdout, stderr, sent)


def lftp_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_lftp(
    srv: Server,
    *commands: str,
    url_scheme: str = "",
    settings: tuple[str, ...] = (),
    timeout: float = 120,
) -> ClientRun:
    """lftp logged in to `srv` over FTPS (explicit, or implicit with url_scheme="ftps")."""
    target = f"{url_scheme}://{srv.url_host}" if url_scheme else srv.host
    script = "\n".join(
        [
            *LFTP_TLS_SETTINGS,
            *settings,
            f"open -u {lftp_quote(f'{srv.user},{srv.password}')} -p {srv.port} {target}",
            *commands,
        ]
    )
    proc = subprocess.run(
        ["lftp", "-d", "-c", script],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    sent = tuple(line[5:] for line in stderr.splitlines() if line.startswith("---> "))
    return ClientRun(proc.returncode, proc.stdout, stderr, sent)


def tls_download(ftp: ReusingFTP_TLS, mode: str, command: str) -> tuple[bytes, str, bool]:
    """Read what `command` sends on a resumed TLS data connection in `mode`.

    Returns:
        The bytes, the final reply, and whether the data connection resumed the session.
    """
    conn, _ = open_data(ftp, mode, command)
    with wrap_data(ftp, conn, session=control_session(ftp)) as tls:
        resumed = bool(tls.session_reused)
        data = recv_all(tls)
        tls.unwrap()
    return data, ftp.voidresp(), resumed


def tls_upload(ftp: ReusingFTP_TLS, mode: str, command: str, data: bytes) -> tuple[str, bool]:
    """Send `data` for `command` on a resumed TLS data connection, ending with close_notify."""
    conn, _ = open_data(ftp, mode, command)
    with wrap_data(ftp, conn, session=control_session(ftp)) as tls:
        resumed = bool(tls.session_reused)
        tls.sendall(data)
        tls.unwrap()
    return ftp.voidresp(), resumed
