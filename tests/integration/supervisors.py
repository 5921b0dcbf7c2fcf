"""Real supervisors for the integration tests, and bounded waits on their processes.

A Sup is one supervisor and its config directory; make_supervisor writes an ipv4 and an ipv6
instance (same port number on each stack, one passive range of 5 ports), and Sup runs the real
`python -m ftpsup` commands against it; own_supervisor is make_supervisor for a with block,
shut down and removed at its end. Every wait is bounded, and stopping a Sup ends every
process it started (stop all, then SIGKILL by pid for anything left). raw_session and
slow_download are sessions on its instances that a test holds open or paces itself.
"""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from tests.ftpsup_cli import run_ftpsup
from tests.integration.raw_ftp import RawControl, open_data
from tests.integration.servers import PASSWORD, USER, write_alice_store

TIMEOUT = 60
STOPWAITSECS = 4
HOSTS = {"ipv4": "127.0.0.1", "ipv6": "::1"}


def _bindable(port: int) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports free on both stacks, below the ephemeral range."""
    for _ in range(200):
        first = random.randrange(20000, 30000 - count)
        if all(_bindable(p) for p in range(first, first + count)):
            return first
    raise AssertionError("no free port range")


def _toml(values: dict[str, Any]) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie nobody reaps counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@attrs.define
class Sup:
    """A config directory and the supervisor started from it."""

    base: Path
    port: int
    pasv: tuple[int, int]
    seen_pids: set[int] = attrs.field(factory=set)

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def home(self) -> Path:
        return self.base / "home" / USER

    @property
    def run_dir(self) -> Path:
        return self.base / "run"

    def ftpsup(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_ftpsup("--config-dir", str(self.etc), *args, stdin=stdin)

    def status(self) -> dict[str, Any]:
        result = self.ftpsup("status", "--json")
        assert result.returncode in (0, 1), result.stderr  # 1: an instance FATAL or BACKOFF
        data: dict[str, Any] = json.loads(result.stdout)
        self.seen_pids.add(data["supervisor"]["pid"])
        for entry in data["instances"]:
            self.seen_pids.update(p for p in [entry["pid"], entry["replacement"]] if p)
            self.seen_pids.update(d["pid"] for d in entry["draining"])
        return data

    def instance(self, name: str) -> dict[str, Any]:
        entry = next(e for e in self.status()["instances"] if e["name"] == name)
        return dict(entry)

    def pid(self, name: str) -> int:
        pid = self.instance(name)["pid"]
        assert isinstance(pid, int)
        return pid

    def connect(self, name: str, *, user: str = USER, password: str = PASSWORD) -> ftplib.FTP:
        ftp = ftplib.FTP(timeout=20)
        ftp.connect(HOSTS[name], self.port)
        ftp.login(user, password)
        return ftp

    def set_key(self, name: str, key: str, value: Any) -> None:
        path = self.etc / f"{name}.toml"
        kept = [ln for ln in path.read_text().splitlines() if not ln.startswith(f"{key} =")]
        path.write_text("\n".join(kept) + "\n" + _toml({key: value}))

    def shutdown(self) -> None:
        pid_file = self.run_dir / "supervisor.pid"
        with contextlib.suppress(OSError, ValueError):
            self.seen_pids.add(int(pid_file.read_text()))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.ftpsup("stop", "all")
        for pid in self.seen_pids:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def make_supervisor(**shared: Any) -> Sup:
    """Write a config dir with instances ipv4 (127.0.0.1) and ipv6 (::1) on one port."""
    base = Path(tempfile.mkdtemp(prefix="ftpsup-sup-"))
    base.chmod(0o755)
    pasv_min = free_ports(5)
    sup = Sup(base, free_ports(1), (pasv_min, pasv_min + 4))
    sup.etc.mkdir()
    settings = {
        "user_db_file": "users.toml",
        "state_dir": str(sup.run_dir),
        "log_dir": str(base / "log"),
        "pasv_min_port": sup.pasv[0],
        "pasv_max_port": sup.pasv[1],
        "startsecs": 1,
        "stopwaitsecs": STOPWAITSECS,
        "accept_timeout": 10,
        "delay_failed_login": 0,
        "write_enable": True,
        "ftpd_banner": "old banner",
        # The privilege drop has its own tests (test_privileges.py).
        "run_as_root": True,
        **shared,
    }
    (sup.etc / "_shared.toml").write_text(_toml(settings))
    for name, host in HOSTS.items():
        (sup.etc / f"{name}.toml").write_text(
            _toml({"listen_address": host, "listen_port": sup.port})
        )
    write_alice_store(sup.etc, sup.home)
    return sup


@contextlib.contextmanager
def own_supervisor(**shared: Any) -> Iterator[Sup]:
    """make_supervisor(**shared), shut down and its directory removed when the block ends."""
    sup = make_supervisor(**shared)
    try:
        yield sup
    finally:
        sup.shutdown()
        shutil.rmtree(sup.base, ignore_errors=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def slow_download(sup: Sup, name: str, started: threading.Event, release: threading.Event) -> bytes:
    """RETR big.bin, held open: after the first chunk (`started`) it reads nothing more until
    `release` is set, then reads the rest at full speed. The transfer lasts exactly as long as
    the test needs, however busy the machine.
    """
    ftp = sup.connect(name)
    try:
        conn, _ = open_data(ftp, "EPSV", "RETR big.bin", rcvbuf=64 * 1024, timeout=30)
        data = bytearray()
        with conn:
            while chunk := conn.recv(64 * 1024):
                data += chunk
                started.set()
                if not release.is_set():
                    assert release.wait(TIMEOUT), "the download was never released"
        ftp.voidresp()
    finally:
        with contextlib.suppress(OSError, EOFError, ftplib.Error):
            ftp.quit()
    return bytes(data)


def raw_session(host: str, port: int, *, timeout: float = 10) -> RawControl:
    """A logged-in hand-made control connection."""
    session = RawControl(host, port, timeout=timeout)
    assert session.reply().code == 220
    assert session.login().code == 230
    return session
