"""Start and stop each server under test on loopback: ftpsup, vsftpd, Pure-FTPd, pyftpdlib.

Rules:
- Comparable settings: 127.0.0.1 and a free high port, the workspace's passive range, logging
  off where the server allows it, TLS allowed (not required) with the same self-signed
  certificate, connection caps lifted so a burst measures the server and not a setting.
  Listen backlogs stay as each server ships them.
- A server that is not installed (or needs root) is reported by `unavailable`, never started.
- Every server runs in its own process group; `stop` ends the group, then any descendant
  that left it, each by pid and only if it is still the process that was recorded.
- Every wait is bounded; a server that does not greet within START_TIMEOUT fails to start
  and its log tail says why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from bench import procstats
from bench.workspace import BENCH_USER, HOST, PAM_SERVICE, Workspace

REPO = Path(__file__).resolve().parent.parent
PEERS_DIR = Path(__file__).resolve().parent / ".peers"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
SERVERS = ("ftpsup", "vsftpd", "pure-ftpd", "pyftpdlib")


class StartError(Exception):
    """A server did not come up; the message carries its log tail."""


@attrs.define
class Running:
    """A started server: its process, port, login name and how it checks passwords."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    user: str
    password_check: str
    log: Path


def _binary(name: str) -> str | None:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    for sub in ("usr/sbin", "usr/bin"):
        local = PEERS_DIR / "pure-ftpd" / sub / name
        if local.is_file():
            return str(local)
    return None


def unavailable(name: str, ws: Workspace) -> str | None:
    """Why `name` cannot run here, or None when it can."""
    if name == "pyftpdlib":
        for module in ("pyftpdlib", "OpenSSL"):
            if importlib.util.find_spec(module) is None:
                return f"Python module {module} is not installed (pip install pyftpdlib pyopenssl)"
        return None
    if name == "ftpsup":
        return None
    needs = {"vsftpd": ["vsftpd"], "pure-ftpd": ["pure-ftpd", "pure-pw"]}[name]
    missing = [b for b in needs if _binary(b) is None]
    if missing:
        return f"{', '.join(missing)} not found (run bench/install_peers.sh)"
    if ws.system_user is None:
        return f"needs root, to log in the system user {BENCH_USER} (see bench/README.md)"
    return None


def version(name: str) -> str:
    """The version string of a server, for the report."""
    try:
        if name == "ftpsup":
            import ftpsup

            rev = subprocess.run(
                ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                capture_output=True, text=True, timeout=10,
            ).stdout.strip()  # fmt: skip
            return f"ftpsup {ftpsup.__version__} ({rev or 'no git'})"
        if name == "pyftpdlib":
            from importlib.metadata import version as dist_version

            return f"pyftpdlib {dist_version('pyftpdlib')}"
        if name == "vsftpd":
            out = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", "vsftpd"],
                capture_output=True, text=True, timeout=10,
            ).stdout  # fmt: skip
            return f"vsftpd {out.strip() or '?'}"
        binary = _binary("pure-ftpd") or "pure-ftpd"
        done = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
        first = (done.stdout or done.stderr).splitlines()
        return first[0].strip() if first else "pure-ftpd ?"
    except (OSError, subprocess.TimeoutExpired):
        return f"{name} ?"


def free_port() -> int:
    """A loopback port that was free a moment ago (the server binds it next)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                if sock.recv(64).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
    raise StartError(f"no 220 greeting on port {port} (exit {proc.poll()}): {tail.strip()}")


def _spawn(
    name: str, argv: list[str], ws: Workspace, port: int
) -> tuple[subprocess.Popen[bytes], Path]:
    log = ws.base / f"{name}.log"
    env = {**os.environ, "FTPBENCH_PASSWORD": ws.password}
    with log.open("ab") as out:
        # vsftpd reports start-up errors on descriptor 0, so that goes to the log too.
        proc = subprocess.Popen(
            argv, stdin=out, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_ready(proc, port, log)
    except BaseException:
        _end_group(proc, procstats.tree(proc.pid))
        raise
    return proc, log


def _start_ftpsup(ws: Workspace, port: int) -> Running:
    etc = ws.base / f"ftpsup-etc-{port}"
    etc.mkdir()
    (etc / "_shared.toml").write_text(
        f'user_db_file = "users.toml"\nstate_dir = "{ws.run_dir}/ftpsup-{port}"\n'
        f'log_dir = "{ws.base}/ftpsup-log-{port}"\n'
        f"pasv_min_port = {ws.pasv_min}\npasv_max_port = {ws.pasv_max}\n"
        # As the bench always ran it: the files and the key are root's scratch space. The
        # privilege drop happens once, at start, and costs a session nothing.
        "run_as_root = true\n"
    )
    (etc / "bench.toml").write_text(
        f'listen_address = "{HOST}"\nlisten_port = {port}\nwrite_enable = true\n'
        'local_umask = "022"\nmax_clients = 0\nmax_per_ip = 0\n'
        # Every client comes from one address here: the per-address caps are off.
        "max_pasv_per_ip = 0\nmax_tls_handshakes_per_ip = 0\n"
        f'ssl_enable = true\nrsa_cert_file = "{ws.cert}"\nrsa_private_key_file = "{ws.key}"\n'
        "force_local_logins_ssl = false\nforce_local_data_ssl = false\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "ftpsup", "--config-dir", str(etc), "user", "add", "bench",
         "--home", str(ws.root), "--password-stdin"],
        input=f"{ws.password}\n".encode(), capture_output=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise StartError(f"ftpsup user add: {done.stderr.decode(errors='replace').strip()}")
    found = re.search(r"\$scrypt\$[^$]*", (etc / "users.toml").read_text())
    check = f"scrypt {found[0].split('$')[2]}" if found else "scrypt (parameters unknown)"
    argv = [sys.executable, "-m", "ftpsup", "serve", str(etc / "bench.toml")]
    proc, log = _spawn("ftpsup", argv, ws, port)
    return Running("ftpsup", proc, port, "bench", check, log)


def _start_pyftpdlib(ws: Workspace, port: int) -> Running:
    argv = [
        sys.executable, "-m", "bench.pyftpdlib_server", "--port", str(port),
        "--root", str(ws.root), "--user", "bench", "--pasv", f"{ws.pasv_min}-{ws.pasv_max}",
        "--cert", str(ws.cert), "--key", str(ws.key),
    ]  # fmt: skip
    proc, log = _spawn("pyftpdlib", argv, ws, port)
    return Running("pyftpdlib", proc, port, "bench", "plain-text compare (DummyAuthorizer)", log)


def _crypt_scheme(crypt_hash: str) -> str:
    names = {"y": "yescrypt", "6": "sha512-crypt", "5": "sha256-crypt", "2b": "bcrypt"}
    parts = crypt_hash.split("$")
    if len(parts) > 2:
        scheme = names.get(parts[1], parts[1])
        return f"{scheme} ${parts[1]}${parts[2]}" if parts[1] == "y" else scheme
    return "crypt"


def _start_vsftpd(ws: Workspace, port: int) -> Running:
    assert ws.system_user is not None
    empty = ws.base / "vsftpd-empty"
    empty.mkdir(mode=0o755, exist_ok=True)
    conf = ws.base / f"vsftpd-{port}.conf"
    conf.write_text(
        "listen=YES\nlisten_ipv6=NO\nbackground=NO\n"
        f"listen_address={HOST}\nlisten_port={port}\n"
        "anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=022\n"
        "chroot_local_user=YES\nallow_writeable_chroot=YES\n"
        f"pasv_enable=YES\npasv_min_port={ws.pasv_min}\npasv_max_port={ws.pasv_max}\n"
        "max_clients=0\nmax_per_ip=0\n"
        "xferlog_enable=NO\nsyslog_enable=NO\ndual_log_enable=NO\n"
        f"pam_service_name={PAM_SERVICE}\nsecure_chroot_dir={empty}\n"
        f"ssl_enable=YES\nrsa_cert_file={ws.cert}\nrsa_private_key_file={ws.key}\n"
        "force_local_logins_ssl=NO\nforce_local_data_ssl=NO\n"
    )
    conf.chmod(0o600)
    proc, log = _spawn("vsftpd", [_binary("vsftpd") or "vsftpd", str(conf)], ws, port)
    check = f"PAM pam_unix, {_crypt_scheme(ws.system_user.crypt_hash)}"
    return Running("vsftpd", proc, port, BENCH_USER, check, log)


def _start_pureftpd(ws: Workspace, port: int) -> Running:
    user = ws.system_user
    assert user is not None
    passwd, pdb = ws.base / f"pureftpd-{port}.passwd", ws.base / f"pureftpd-{port}.pdb"
    # The virtual user carries the system account's own crypt hash: pure-pw's default
    # (argon2id) takes seconds per login here, far from any server's usual cost.
    passwd.write_text(f"bench:{user.crypt_hash}:{user.uid}:{user.gid}::{ws.root}/./::::::::::::\n")
    passwd.chmod(0o600)
    done = subprocess.run(
        [_binary("pure-pw") or "pure-pw", "mkdb", str(pdb), "-f", str(passwd)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise StartError(f"pure-pw mkdb: {done.stderr.strip()}")
    # Pure-FTPd caps its clients at half the passive range, so the range must be wide.
    cap = max(1, (ws.pasv_max - ws.pasv_min + 1) // 2)
    argv = [
        _binary("pure-ftpd") or "pure-ftpd", "-S", f"{HOST},{port}", "-l", f"puredb:{pdb}",
        "-E", "-A", "-H", "-f", "none", "-p", f"{ws.pasv_min}:{ws.pasv_max}",
        "-c", str(cap), "-C", str(cap), "-Y", "1", "-2", f"{ws.cert},{ws.key}",
    ]  # fmt: skip
    proc, log = _spawn("pure-ftpd", argv, ws, port)
    check = f"puredb, {_crypt_scheme(user.crypt_hash)} (same hash as vsftpd's)"
    return Running("pure-ftpd", proc, port, "bench", check, log)


_STARTERS: dict[str, Callable[[Workspace, int], Running]] = {
    "ftpsup": _start_ftpsup,
    "vsftpd": _start_vsftpd,
    "pure-ftpd": _start_pureftpd,
    "pyftpdlib": _start_pyftpdlib,
}


def start(name: str, ws: Workspace) -> Running:
    """Start server `name` on a free loopback port and wait for its greeting."""
    return _STARTERS[name](ws, free_port())


def _end_group(proc: subprocess.Popen[bytes], members: list[procstats.ProcStat]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
            break
        except subprocess.TimeoutExpired:
            continue
    for stat in members:
        if stat.pid != proc.pid and procstats.same_process(stat):
            with contextlib.suppress(ProcessLookupError):
                os.kill(stat.pid, signal.SIGKILL)


def stop(running: Running) -> None:
    """Stop the server and every process it started."""
    _end_group(running.proc, procstats.tree(running.proc.pid))


def alive(running: Running) -> bool:
    """True while the server's main process runs."""
    return running.proc.poll() is None
