"""The README's Quick start, for real, as root, from a checkout in a directory closed to others.

An admin who is root clones into /root (mode 0700). The instances drop to nopriv_user after
loading, yet still re-read the user store, read the certificate and key, and write their logs
and leases under the checkout: they reach those through directories opened before the drop
(ftpsup/server/anchors.py). The test copies the shipped instances.d into a checkout-like
directory under a fresh 0700 directory, gives it its own ports and a throwaway account for
nopriv_user (created by `ftpsup setup`, removed afterwards), and runs the Quick start's
commands: `setup`, `user add`, `cert`, `start all`; then TLS logins, uploads and downloads on
127.0.0.1 and ::1, a password change picked up by the running instances, and `stop all`.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.server.privileges import read_credentials
from tests.integration import throwaway
from tests.integration.ftps import ReusingFTP_TLS, client_context
from tests.integration.supervisors import free_ports

TIMEOUT = 60
SHIPPED = Path(__file__).resolve().parents[2] / "instances.d"


def copy_shipped_config(etc: Path, *, nopriv_user: str | None = None) -> int:
    """Copy the shipped instances.d to `etc` on free ports; returns the FTP port.

    The explicit instances listen on the returned port, implicit FTPS on the next one, and the
    passive range moves to free ports. `nopriv_user` uncomments the shipped example line.
    """
    shutil.copytree(SHIPPED, etc, ignore=shutil.ignore_patterns("users.toml"))
    port, pasv = free_ports(2), free_ports(5)
    for file in etc.glob("*.toml"):
        text = file.read_text().replace("listen_port = 21\n", f"listen_port = {port}\n")
        text = text.replace("listen_port = 990\n", f"listen_port = {port + 1}\n")
        text = text.replace("pasv_min_port = 10080", f"pasv_min_port = {pasv}")
        text = text.replace("pasv_max_port = 10100", f"pasv_max_port = {pasv + 4}")
        if nopriv_user is not None:
            text = text.replace('# nopriv_user = "ftp"', f'nopriv_user = "{nopriv_user}"')
        file.write_text(text)
    if nopriv_user is not None:
        assert f'nopriv_user = "{nopriv_user}"' in (etc / "_shared.toml").read_text()
    return port


def ftpsup(
    etc: Path, *args: str, stdin: str = "", cwd: Path, umask: int = 0o022
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftpsup", "--config-dir", str(etc), *args],
        input=stdin,
        preexec_fn=lambda: os.umask(umask),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=cwd,
    )


def instance_pids(etc: Path, cwd: Path) -> dict[str, int]:
    status = ftpsup(etc, "status", "--json", cwd=cwd)
    return {e["name"]: e["pid"] for e in json.loads(status.stdout)["instances"]}


@contextlib.contextmanager
def closed_checkout() -> Iterator[Path]:
    """A checkout-like directory inside a fresh root-only (0700) directory, as /root is."""
    home = Path(tempfile.mkdtemp(prefix="ftpsup-root-home-"))
    try:
        assert home.stat().st_mode & 0o777 == 0o700
        checkout = home / "ftpsup"
        checkout.mkdir(mode=0o755)
        yield checkout
    finally:
        shutil.rmtree(home, ignore_errors=True)


def login(host: str, port: int, password: str) -> ReusingFTP_TLS:
    ftp = ReusingFTP_TLS(context=client_context(), timeout=20)
    ftp.connect(host, port)
    ftp.auth()
    ftp.login("demo", password)
    ftp.prot_p()
    return ftp


@pytest.mark.skipif(os.geteuid() != 0, reason="the Quick start as root needs root")
def test_quick_start_as_root_from_a_checkout_in_a_closed_directory() -> None:
    name = throwaway.account_name()
    with closed_checkout() as checkout, throwaway.passable_tmp("ftpsup-srv-") as srv:
        etc = checkout / "instances.d"
        port = copy_shipped_config(etc, nopriv_user=name)
        # A config directory as closed as its parent: setup lets the account search it alone.
        etc.chmod(0o700)
        home = srv / "ftpsup" / "demo"
        try:
            setup = ftpsup(etc, "setup", cwd=checkout)
            assert setup.returncode == 0, setup.stderr
            account = pwd.getpwnam(name)
            assert (etc.stat().st_mode & 0o777, etc.stat().st_gid) == (0o710, account.pw_gid)
            assert checkout.parent.stat().st_mode & 0o777 == 0o700
            add = ftpsup(
                etc,
                *("user", "add", "demo", "--home", str(home), "--password-stdin", "--allow-weak"),
                "--replace",
                stdin="demo\n",
                cwd=checkout,
            )
            assert add.returncode == 0, add.stderr
            assert (home.stat().st_uid, home.stat().st_gid) == (account.pw_uid, account.pw_gid)
            # An admin's strict umask makes var/tls 0700: cert lets the account search it.
            assert ftpsup(etc, "cert", cwd=checkout, umask=0o077).returncode == 0
            tls = checkout / "var" / "tls"
            assert (tls.stat().st_mode & 0o777, tls.stat().st_gid) == (0o710, account.pw_gid)
            start = ftpsup(etc, "start", "all", cwd=checkout)
            assert start.returncode == 0, start.stdout + start.stderr
            pids = instance_pids(etc, checkout)
            assert set(pids) == {"ipv4", "ipv6", "ipv4-implicit", "ipv6-implicit"}
            for pid in pids.values():
                creds = read_credentials(Path(f"/proc/{pid}/status"))
                assert creds.uids == (account.pw_uid,) * 4
                assert (creds.cap_eff, creds.cap_prm) == (0, 0)
            for host in ("127.0.0.1", "::1"):
                ftp = login(host, port, "demo")
                try:
                    ftp.storbinary("STOR up.txt", io.BytesIO(host.encode()))
                    got = io.BytesIO()
                    ftp.retrbinary("RETR up.txt", got.write)
                    assert got.getvalue() == host.encode()
                finally:
                    ftp.quit()
                assert (home / "up.txt").stat().st_uid == account.pw_uid
            # The running instances re-read the store behind the closed directory.
            passwd = ftpsup(
                etc, "user", "passwd", "demo", "--password-stdin", stdin="n3w pass\n", cwd=checkout
            )
            assert passwd.returncode == 0, passwd.stderr
            for host in ("127.0.0.1", "::1"):
                with pytest.raises(ftplib.error_perm, match="^530"):
                    login(host, port, "demo")
                login(host, port, "n3w pass").quit()
            stop = ftpsup(etc, "stop", "all", cwd=checkout)
            assert stop.returncode == 0, stop.stdout + stop.stderr
        finally:
            ftpsup(etc, "stop", "all", cwd=checkout)
            throwaway.remove_account(name)
