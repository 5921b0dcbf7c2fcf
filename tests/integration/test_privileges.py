"""Root is never the default: instances started as root become nopriv_user, for real.

Every test that drops privileges runs as root, against a throwaway system account made with
useradd (removed afterwards), with this test run's own interpreter. Under pyenv that
interpreter lives in /root (mode 0700), where the account cannot even run it: the instance
starts as root, loads, then drops. What the kernel says about the instance (/proc/<pid>/status)
is the evidence, and so are real logins and transfers (ftplib, plain and TLS) after the drop.

The planted-package test for `serve` is here (it drops); the others are in
test_planted_code.py.
"""

from __future__ import annotations

import ftplib
import io
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.server.privileges import CAP_NET_BIND_SERVICE
from ftpsup.users.accounts import Account, blocked_for
from tests.ftpsup_cli import run_ftpsup
from tests.integration import throwaway
from tests.integration.privilege_checks import (
    Site,
    assert_dropped_to,
    credentials,
    exercise,
    ftpsup_run,
    make_site,
    plant_shadow_like,
    serving,
)
from tests.integration.servers import PASSWORD, USER, add_user, wait_until
from tests.integration.supervisors import Sup, own_supervisor
from tests.integration.test_planted_code import plant_package
from tests.integration.test_quick_start import copy_shipped_config

TIMEOUT = 60


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="dropping privileges needs root (ftpsup is started as root)"
)


@pytest.fixture(scope="module")
def account() -> Iterator[pwd.struct_passwd]:
    if os.geteuid() != 0:
        pytest.skip("dropping privileges needs root (ftpsup is started as root)")
    with throwaway.throwaway_account() as entry:
        yield entry


@pytest.fixture
def site(account: pwd.struct_passwd) -> Iterator[Site]:
    with throwaway.passable_tmp("ftpsup-priv-") as base:
        yield make_site(base, account)


# -- ftpsup serve ----------------------------------------------------------------------------


@needs_root
def test_serve_as_root_drops_to_nopriv_user_and_still_serves_plain_and_tls(site: Site) -> None:
    interpreter = Path(os.path.realpath(sys.executable))
    entry = site.account
    unreachable = blocked_for(
        interpreter, Account(entry.pw_name, entry.pw_uid, entry.pw_gid), need=0o1
    )
    with serving(site) as (pid, port):
        assert_dropped_to(pid, site.account)
        exercise("127.0.0.1", port, site.home, site.account)
        # The lease files the instance made after the drop are the account's.
        leases = list((site.base / "run" / "ports").glob("*.lock"))
        assert leases
        assert {p.stat().st_uid for p in leases} == {site.account.pw_uid}
        # logrotate: the file moves away, SIGHUP, and the account creates the new one.
        site.log.rename(site.log.with_suffix(".1"))
        os.kill(pid, signal.SIGHUP)
        wait_until(site.log.exists, "the reopened log", timeout=20)
        assert site.log.stat().st_uid == site.account.pw_uid
    text = site.log.with_suffix(".1").read_text()
    assert f"running as {site.account.pw_name} (uid {site.account.pw_uid}" in text
    if unreachable is not None:
        # The case that could not be tested before: an interpreter only root can read.
        assert interpreter.is_relative_to(unreachable)


@needs_root
def test_connect_from_port_20_keeps_only_cap_net_bind_service(site: Site) -> None:
    with (site.etc / "t.toml").open("a") as f:
        f.write("connect_from_port_20 = true\n")
    with serving(site) as (pid, instance_port):
        assert_dropped_to(pid, site.account, caps=1 << CAP_NET_BIND_SERVICE)
        with socket.socket() as client_listener:
            client_listener.bind(("127.0.0.1", 0))
            client_listener.listen(1)
            host, port = client_listener.getsockname()
            with ftplib.FTP(timeout=20) as ftp:
                ftp.connect("127.0.0.1", instance_port)
                ftp.login(USER, PASSWORD)
                ftp.sendcmd(f"PORT {host.replace('.', ',')},{port >> 8},{port & 255}")
                ftp.putcmd("NLST")
                conn, peer = client_listener.accept()
                conn.close()
                ftp.getresp()
        assert peer[1] == 20


@needs_root
def test_a_missing_account_starts_nothing_and_says_how_to_create_it(site: Site) -> None:
    shared = site.etc / "_shared.toml"
    shared.write_text(shared.read_text().replace(site.account.pw_name, "ftpsupnosuchacct"))
    result = run_ftpsup("serve", str(site.etc / "t.toml"))
    assert result.returncode == 2
    assert 'nopriv_user: no account "ftpsupnosuchacct" on this host' in result.stderr
    assert "`ftpsup setup`" in result.stderr
    check = ftpsup_run("check", str(site.etc))
    assert f'{shared}: nopriv_user: no account "ftpsupnosuchacct"' in check.stderr


@needs_root
def test_check_reports_a_store_the_account_cannot_read_and_setup_shares_it(site: Site) -> None:
    store = site.etc / "users.toml"
    assert ftpsup_run("check", str(site.etc)).stdout.strip() == "ok"
    store.chmod(0o600)
    check = ftpsup_run("check", str(site.etc))
    assert check.returncode == 1
    assert f"user_db_file: nopriv_user {site.account.pw_name} cannot read {store}" in check.stderr
    assert "run `ftpsup setup`" in check.stderr
    setup = ftpsup_run("--config-dir", str(site.etc), "setup")
    assert setup.returncode == 0, setup.stderr
    assert (store.stat().st_mode & 0o777, store.stat().st_gid) == (0o640, site.account.pw_gid)
    assert ftpsup_run("check", str(site.etc)).stdout.strip() == "ok"


# -- the supervisor --------------------------------------------------------------------------


@pytest.fixture
def supervised(account: pwd.struct_passwd) -> Iterator[Sup]:
    with own_supervisor(run_as_root=False, nopriv_user=account.pw_name) as s:
        plant_shadow_like(s.home)
        yield s


@needs_root
def test_supervisor_as_root_runs_every_instance_as_nopriv_user(
    supervised: Sup, account: pwd.struct_passwd
) -> None:
    result = supervised.ftpsup("start", "all")
    assert result.returncode == 0, result.stdout + result.stderr
    for name, host in (("ipv4", "127.0.0.1"), ("ipv6", "::1")):
        assert_dropped_to(supervised.pid(name), account)
        with ftplib.FTP(timeout=20) as ftp:
            ftp.connect(host, supervised.port)
            ftp.login(USER, PASSWORD)
            ftp.storbinary(f"STOR {name}.txt", io.BytesIO(name.encode()))
            with pytest.raises(ftplib.error_perm, match="^550"):
                ftp.retrbinary("RETR shadow", io.BytesIO().write)
        assert (supervised.home / f"{name}.txt").stat().st_uid == account.pw_uid
    # The supervisor itself stays root: it binds, and restarts instances on the same socket.
    supervisor_pid = supervised.status()["supervisor"]["pid"]
    assert credentials(supervisor_pid).uids == (0, 0, 0, 0)


@needs_root
def test_run_as_root_is_explicit_and_warned_at_every_start(supervised: Sup) -> None:
    shared = supervised.etc / "_shared.toml"
    shared.write_text(shared.read_text().replace("run_as_root = false", "run_as_root = true"))
    result = supervised.ftpsup("start", "all")
    assert result.returncode == 0, result.stdout + result.stderr
    pid = supervised.pid("ipv4")
    assert credentials(pid).uids == (0, 0, 0, 0)
    # The control for the 550 the dropped instances give: as root, the shadow file is served.
    with supervised.connect("ipv4") as ftp:
        got = io.BytesIO()
        ftp.retrbinary("RETR shadow", got.write)
    assert got.getvalue() == (supervised.home / "shadow").read_bytes()
    assert supervised.ftpsup("restart", "ipv4").returncode == 0
    instance_log = supervised.base / "log" / "ipv4" / "ftpsup.log"
    supervisor_log = supervised.base / "log" / "supervisor.log"
    warning = "run_as_root = true: "
    wait_until(
        lambda: instance_log.read_text().count(warning) == 2, "two instance warnings", timeout=20
    )
    assert supervisor_log.read_text().count(f"WARNING: ipv4: {warning}") == 2


@needs_root
def test_shipped_configuration_started_as_root_never_runs_an_instance_as_root() -> None:
    with throwaway.passable_tmp("ftpsup-shipped-") as base:
        etc = base / "instances.d"
        copy_shipped_config(etc)
        assert ftpsup_run("--config-dir", str(etc), "cert").returncode == 0
        # A store with no users, as `ftpsup setup` writes one: start refuses a missing store.
        (etc / "users.toml").write_text("[users]\n")
        result = ftpsup_run("--config-dir", str(etc), "start", "all")
        try:
            _assert_not_root(result, etc, base)
        finally:
            run_ftpsup("--config-dir", str(etc), "stop", "all")


@needs_root
def test_shipped_configuration_runs_its_instances_with_no_capability(
    account: pwd.struct_passwd,
) -> None:
    # The shipped files leave connect_from_port_20 off, so nothing keeps CAP_NET_BIND_SERVICE.
    with throwaway.passable_tmp("ftpsup-shipped-") as base:
        etc = base / "instances.d"
        copy_shipped_config(etc, nopriv_user=account.pw_name)
        add_user(etc, USER, PASSWORD, base / "home" / USER)
        assert ftpsup_run("--config-dir", str(etc), "cert").returncode == 0
        result = ftpsup_run("--config-dir", str(etc), "start", "all")
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            status = ftpsup_run("--config-dir", str(etc), "status", "--json")
            pids = [entry["pid"] for entry in json.loads(status.stdout)["instances"]]
            assert len(pids) == 4
            assert all(pids)
            for pid in pids:
                assert_dropped_to(pid, account, caps=0)
        finally:
            ftpsup_run("--config-dir", str(etc), "stop", "all")


def _assert_not_root(result: subprocess.CompletedProcess[str], etc: Path, base: Path) -> None:
    try:
        ftpsup_account = pwd.getpwnam("ftpsup")
    except KeyError:
        # A host that has not run `ftpsup setup`: nothing starts, and the problem says why.
        assert result.returncode == 2, result.stdout + result.stderr
        assert f'{etc / "_shared.toml"}: nopriv_user: no account "ftpsup"' in result.stderr
        assert "`ftpsup setup`" in result.stderr
        assert not (base / "var" / "run" / "supervisor.pid").exists()
        return
    status = run_ftpsup("--config-dir", str(etc), "status", "--json")
    for entry in json.loads(status.stdout)["instances"]:
        if entry["pid"]:
            assert credentials(entry["pid"]).uids == (ftpsup_account.pw_uid,) * 4


@needs_root
def test_serve_from_a_directory_with_an_ftpsup_package_drops_and_never_runs_it(
    site: Site, tmp_path: Path
) -> None:
    directory, marker = tmp_path / "admin-cwd", tmp_path / "planted-code-ran"
    directory.mkdir()
    plant_package(directory, marker)
    # The console script, as an admin types it (its own directory, not the working
    # directory, is on its sys.path).
    script = shutil.which("ftpsup", path=str(Path(sys.executable).parent)) or "ftpsup"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [script, "serve", str(site.etc / "t.toml"), "--listen-fd", str(listener.fileno())],
        pass_fds=[listener.fileno()],
        cwd=directory,
        stdin=subprocess.DEVNULL,
    )
    listener.close()
    try:
        with ftplib.FTP(timeout=20) as ftp:
            ftp.connect("127.0.0.1", port)
            ftp.login(USER, PASSWORD)
            assert "shadow" in ftp.nlst()
        assert_dropped_to(process.pid, site.account)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=TIMEOUT)
    assert not marker.exists()
