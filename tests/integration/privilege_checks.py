"""Helpers of the privilege tests: `ftpsup` run from /, the credentials and capabilities of a
process, a config directory served by a throwaway account (Site), and a session that proves an
instance still serves plain FTP and FTPS after dropping to it.
"""

from __future__ import annotations

import contextlib
import ftplib
import functools
import io
import os
import pwd
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from ftpsup.server.privileges import Credentials, read_credentials
from tests.ftpsup_cli import run_ftpsup
from tests.integration.ftps import ReusingFTP_TLS, client_context
from tests.integration.servers import PASSWORD, USER, add_user
from tests.integration.supervisors import free_ports

ftpsup_run = functools.partial(run_ftpsup, cwd="/")


def credentials(pid: int) -> Credentials:
    return read_credentials(Path(f"/proc/{pid}/status"))


def assert_dropped_to(pid: int, account: pwd.struct_passwd, *, caps: int = 0) -> None:
    creds = credentials(pid)
    assert creds.uids == (account.pw_uid,) * 4
    assert creds.gids == (account.pw_gid,) * 4
    assert creds.groups == ()
    assert (creds.cap_eff, creds.cap_prm, creds.cap_amb, creds.cap_inh) == (caps, caps, 0, 0)
    assert creds.no_new_privs == 1


def plant_shadow_like(home: Path) -> Path:
    """/etc/shadow itself in the home (a hard link), else a file protected as it is."""
    target = home / "shadow"
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    try:
        os.link("/etc/shadow", target)
    except OSError:  # another file system
        shadow = os.stat("/etc/shadow")
        target.write_text("root:$y$secret:19000:0:99999:7:::\n")
        os.chown(target, shadow.st_uid, shadow.st_gid)
        target.chmod(shadow.st_mode & 0o777)
    return target


def tls_client(host: str, port: int) -> ReusingFTP_TLS:
    ftp = ReusingFTP_TLS(context=client_context(), timeout=20)
    ftp.connect(host, port)
    ftp.login(USER, PASSWORD)
    ftp.prot_p()
    return ftp


def exercise(host: str, port: int, home: Path, account: pwd.struct_passwd) -> None:
    """Plain and TLS logins, uploads, listings and downloads; the shadow file stays shut."""
    with ftplib.FTP(timeout=20) as ftp:
        ftp.connect(host, port)
        ftp.login(USER, PASSWORD)
        ftp.storbinary("STOR plain.txt", io.BytesIO(b"plain upload"))
        assert "plain.txt" in ftp.nlst()
        got = io.BytesIO()
        ftp.retrbinary("RETR plain.txt", got.write)
        assert got.getvalue() == b"plain upload"
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.retrbinary("RETR shadow", io.BytesIO().write)
    ftp_tls = tls_client(host, port)
    try:
        ftp_tls.storbinary("STOR tls.txt", io.BytesIO(b"tls upload"))
        got = io.BytesIO()
        ftp_tls.retrbinary("RETR tls.txt", got.write)
        assert got.getvalue() == b"tls upload"
        assert {"plain.txt", "tls.txt"} <= {name for name, _ in ftp_tls.mlsd()}
    finally:
        ftp_tls.quit()
    assert (home / "tls.txt").stat().st_uid == account.pw_uid


@attrs.define
class Site:
    """A config directory other accounts can reach, serving alice over plain FTP and TLS."""

    base: Path
    account: pwd.struct_passwd

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def home(self) -> Path:
        return self.base / "home" / USER

    @property
    def log(self) -> Path:
        return self.base / "log" / "t" / "ftpsup.log"


def make_site(base: Path, account: pwd.struct_passwd, **shared: Any) -> Site:
    site = Site(base, account)
    site.etc.mkdir()
    pasv = free_ports(5)
    settings = {
        "user_db_file": "users.toml",
        "state_dir": str(base / "run"),
        "log_dir": str(base / "log"),
        "pasv_min_port": pasv,
        "pasv_max_port": pasv + 4,
        "nopriv_user": account.pw_name,
        "rsa_cert_file": "tls/cert.pem",
        "rsa_private_key_file": "tls/key.pem",
        **shared,
    }
    (site.etc / "_shared.toml").write_text(
        "".join(f"{k} = {_toml(v)}\n" for k, v in settings.items())
    )
    (site.etc / "t.toml").write_text(
        'listen_address = "127.0.0.1"\nlisten_port = 2121\nwrite_enable = true\n'
        "delay_failed_login = 0\nssl_enable = true\nforce_local_logins_ssl = false\n"
        "force_local_data_ssl = false\n"
    )
    # As root, `user add` and `cert` share the store and the key with the account.
    add_user(site.etc, USER, PASSWORD, site.home)
    assert ftpsup_run("--config-dir", str(site.etc), "cert").returncode == 0
    plant_shadow_like(site.home)
    return site


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else f'"{value}"'


@contextlib.contextmanager
def serving(site: Site) -> Iterator[tuple[int, int]]:
    """`ftpsup serve` started as root on an inherited socket; yields its pid and port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "ftpsup", "serve", str(site.etc / "t.toml")]
        + ["--listen-fd", str(listener.fileno())],
        pass_fds=[listener.fileno()],
        stdin=subprocess.DEVNULL,
    )
    listener.close()
    try:
        with ftplib.FTP(timeout=20) as probe:  # connections queue until it serves
            probe.connect("127.0.0.1", port)
        yield process.pid, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
