"""The command line's conventions, as a script or a monitoring check relies on them.

Results on stdout, every error on stderr; `status` exit codes; `stop` shows the drain;
`--config-dir` anywhere; a missing directory named; another account's files give a problem
line, never a traceback; a refused `start` leaves the disk as it was; `cert --days` and
password lengths checked. Every call is a real `python -m ftpsup` process with a timeout.
"""

from __future__ import annotations

import functools
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.ftpsup_cli import run_ftpsup
from tests.integration import throwaway
from tests.integration.raw_ftp import RawControl
from tests.integration.servers import wait_until
from tests.integration.supervisors import Sup, own_supervisor

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60


ftpsup = functools.partial(run_ftpsup, cwd=REPO)


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


@pytest.fixture
def site() -> Iterator[Sup]:
    """A config directory (ipv4 and ipv6 instances); the supervisor is the test's to start."""
    with own_supervisor(startretries=0) as s:
        yield s


# -- arguments ----------------------------------------------------------------------------


def test_config_dir_is_taken_after_the_command_too(site: Sup) -> None:
    checked = ftpsup("check", "--config-dir", str(site.etc))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "ok"
    status = ftpsup("status", "--config-dir", str(site.etc))
    assert status.returncode == 3
    assert str(site.run_dir / "supervisor.sock") in status.stderr
    listed = ftpsup("user", "list", "--config-dir", str(site.etc))
    assert listed.returncode == 0, listed.stderr
    assert "alice" in listed.stdout
    # After the command, it wins over one given before it.
    later = ftpsup("--config-dir", "/nonexistent", "check", "--config-dir", str(site.etc))
    assert later.returncode == 0, later.stderr


@pytest.mark.parametrize(
    "command", [["status"], ["start", "all"], ["stop", "all"], ["check"], ["user", "list"]]
)
def test_a_missing_config_dir_is_named(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nowhere"
    result = ftpsup("--config-dir", str(missing), *command)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"ftpsup: --config-dir {missing}: no such directory\n"


# -- streams and exit codes ---------------------------------------------------------------


def test_a_failed_start_prints_its_problems_on_stderr_only(site: Sup) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.port))
        taken.listen(1)
        result = site.ftpsup("start", "all")
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"127.0.0.1:{site.port}" in result.stderr
    assert "address already in use" in result.stderr


def test_status_exit_code_follows_the_instances_and_status_is_not_logged(site: Sup) -> None:
    started = site.ftpsup("start", "all")
    assert started.returncode == 0, started.stderr
    assert started.stderr == ""
    log = site.base / "log" / "supervisor.log"
    before = log.read_bytes()
    for _ in range(3):
        healthy = site.ftpsup("status")
        assert healthy.returncode == 0, healthy.stderr
        assert healthy.stderr == ""
    assert log.read_bytes() == before

    # ipv4 dies and cannot start again (its log directory became a file): FATAL.
    pid = site.pid("ipv4")
    (site.base / "log" / "ipv4").rename(site.base / "log" / "ipv4.old")
    (site.base / "log" / "ipv4").write_text("in the way\n")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: site.instance("ipv4")["state"] == "FATAL", "ipv4 FATAL", timeout=TIMEOUT)
    failing = site.ftpsup("status")
    assert failing.returncode == 1
    assert "ipv4  FATAL" in failing.stdout
    assert failing.stderr == "ftpsup: not serving: ipv4 (FATAL)\n"
    as_json = site.ftpsup("status", "--json")
    assert as_json.returncode == 1
    assert '"FATAL"' in as_json.stdout


def test_stop_shows_the_drain_on_stderr(site: Sup) -> None:
    started = site.ftpsup("start", "ipv4")
    assert started.returncode == 0, started.stderr
    pid = site.pid("ipv4")
    session = RawControl("127.0.0.1", site.port)
    assert session.reply().code == 220
    stop = subprocess.Popen(
        [sys.executable, "-m", "ftpsup", "--config-dir", str(site.etc), "stop", "all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert stop.stderr is not None
        wanted = f"ftpsup: ipv4: stopping pid {pid}: 1 session(s) left, "
        seen: list[str] = []
        deadline = time.monotonic() + TIMEOUT
        while not any(line.startswith(wanted) for line in seen):
            ready, _, _ = select.select([stop.stderr], [], [], deadline - time.monotonic())
            assert ready, f"no drain progress; got {seen}"
            line = stop.stderr.readline()
            assert line, f"stop ended without drain progress; got {seen}"
            seen.append(line)
        assert seen[-1].rstrip().endswith(" s to stopwaitsecs")
        session.close()  # the drain ends with the last session
        out, _ = stop.communicate(timeout=TIMEOUT)
    finally:
        session.close()
        if stop.poll() is None:
            stop.kill()
            stop.communicate()
    assert stop.returncode == 0
    assert "ipv4: STOPPED" in out
    assert "session(s) left" not in out


# -- another account after a root run -----------------------------------------------------


def _readable_by_all(path: Path) -> bool:
    for step in [*reversed(path.parents), path]:
        mode = step.stat().st_mode
        if mode & 0o005 != 0o005:
            return False
    return True


def _as_account(account: str, sup: Sup, *args: str) -> subprocess.CompletedProcess[str]:
    """`ftpsup` as `account`: the system interpreter, this checkout and the venv's packages."""
    packages = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO}:{packages}", "LANG": "C.UTF-8"}
    return subprocess.run(
        [
            shutil.which("runuser") or "runuser",
            "-u",
            account,
            "--",
            "/usr/bin/python3",
            "-m",
            "ftpsup",
        ]
        + ["--config-dir", str(sup.etc), *args],
        capture_output=True,
        text=True,
        cwd="/",
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture
def other_account(site: Sup) -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root, to make an account and run ftpsup as root first")
    system = Path("/usr/bin/python3")
    if not system.exists() or shutil.which("runuser") is None:
        pytest.skip("needs /usr/bin/python3 and runuser")
    version = subprocess.run(
        [system, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout.strip()
    if version != str(sys.version_info[:2]):
        pytest.skip(f"/usr/bin/python3 is {version}, not this interpreter's version")
    packages = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    if not (_readable_by_all(REPO / "ftpsup") and _readable_by_all(packages)):
        pytest.skip("this checkout or its packages are not readable by other accounts")
    with throwaway.throwaway_account() as entry:
        yield entry.pw_name


def test_another_account_after_a_root_run_gets_problem_lines(site: Sup, other_account: str) -> None:
    started = site.ftpsup("start", "all")
    assert started.returncode == 0, started.stderr
    socket_path = site.run_dir / "supervisor.sock"
    for args in (["status"], ["stop", "all"], ["start", "all"], ["reload"]):
        result = _as_account(other_account, site, *args)
        no_traceback(result)
        assert result.returncode == 4, (args, result.stderr)
        assert result.stderr == (
            f"ftpsup: {socket_path}: permission denied: the supervisor runs as root; "
            "run this command as root\n"
        )
        assert result.stdout == ""
    stopped = site.ftpsup("stop", "all")
    assert stopped.returncode == 0, stopped.stderr
    # Root's files stay: the log files and the lease directory are root's.
    for args in (["start", "all"], ["check"], ["status"]):
        result = _as_account(other_account, site, *args)
        no_traceback(result)
        assert result.returncode != 0
        assert result.stderr.strip(), args
    start = _as_account(other_account, site, "start", "all")
    uid = pwd.getpwnam(other_account).pw_uid
    assert f"cannot be written by uid {uid}" in start.stderr


def test_another_account_is_told_of_roots_supervisor_log(site: Sup, other_account: str) -> None:
    started = site.ftpsup("start", "all")
    assert started.returncode == 0, started.stderr
    stopped = site.ftpsup("stop", "all")
    assert stopped.returncode == 0, stopped.stderr
    # Everything open to all but root's supervisor.log (0640), which the start appends to.
    log = site.base / "log" / "supervisor.log"
    for path in [site.base, *site.base.rglob("*")]:
        if path != log:
            path.chmod(0o777 if path.is_dir() else 0o666)
    result = _as_account(other_account, site, "start", "all")
    no_traceback(result)
    assert result.returncode == 2
    uid = pwd.getpwnam(other_account).pw_uid
    assert result.stderr == (
        f"ftpsup: {site.etc / '_shared.toml'}: log_dir: {log} cannot be written by uid {uid}\n"
    )
    assert result.stdout == ""


# -- a refused start -----------------------------------------------------------------------


def test_a_refused_start_changes_nothing_on_disk(site: Sup) -> None:
    with throwaway.throwaway_account() as entry:
        shared = site.etc / "_shared.toml"
        text = shared.read_text().replace("run_as_root = true\n", "")
        shared.write_text(text + f'nopriv_user = "{entry.pw_name}"\n')
        # ipv6 is broken in a way only start finds: its certificate is missing.
        missing = site.base / "missing.pem"
        site.set_key("ipv6", "ssl_enable", True)
        site.set_key("ipv6", "rsa_cert_file", str(missing))
        site.set_key("ipv6", "rsa_private_key_file", str(missing))
        ports = site.run_dir / "ports"
        ports.mkdir(parents=True, mode=0o700)
        before = ports.stat()
        result = site.ftpsup("start", "all")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "rsa_cert_file" in result.stderr
    assert not (site.base / "log").exists()
    after = ports.stat()
    assert (after.st_uid, after.st_gid, after.st_mode) == (
        before.st_uid,
        before.st_gid,
        before.st_mode,
    )
    assert sorted(p.name for p in site.run_dir.iterdir()) == ["ports"]


# -- cert --days, password length ------------------------------------------------------------


@pytest.mark.parametrize("days", ["-5", "0", "36501", "3650000", "1e3", "\u0663"])
def test_cert_days_out_of_range_is_refused_and_writes_nothing(site: Sup, days: str) -> None:
    site.set_key("ipv4", "ssl_enable", True)
    site.set_key("ipv4", "rsa_cert_file", str(site.base / "cert.pem"))
    site.set_key("ipv4", "rsa_private_key_file", str(site.base / "key.pem"))
    result = site.ftpsup("cert", f"--days={days}")
    no_traceback(result)
    assert result.returncode == 2
    assert "1..36500" in result.stderr
    assert not (site.base / "cert.pem").exists()
    assert not (site.base / "key.pem").exists()


def test_cert_days_at_the_top_of_the_range_is_valid(site: Sup) -> None:
    site.set_key("ipv4", "ssl_enable", True)
    site.set_key("ipv4", "rsa_cert_file", str(site.base / "cert.pem"))
    site.set_key("ipv4", "rsa_private_key_file", str(site.base / "key.pem"))
    result = site.ftpsup("cert", "--days", "36500")
    assert result.returncode == 0, result.stderr
    cert = x509.load_pem_x509_certificate((site.base / "cert.pem").read_bytes())
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 36499 < lifetime.days <= 36501


@pytest.mark.parametrize("command", ["add", "passwd"])
def test_a_short_password_is_refused_unless_allowed(site: Sup, command: str) -> None:
    name = "bob"
    if command == "passwd":
        added = site.ftpsup("user", "add", name, "--home", str(site.base / name),
                            "--password-stdin", stdin="long enough\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
    args = ["user", command, name, "--password-stdin"]
    if command == "add":
        args += ["--home", str(site.base / name)]
    store = site.etc / "users.toml"
    before = store.read_bytes()
    refused = site.ftpsup(*args, stdin="x\n")
    assert refused.returncode == 1
    assert "shorter than 8 characters (--allow-weak accepts it)" in refused.stderr
    assert store.read_bytes() == before
    allowed = site.ftpsup(*args, "--allow-weak", stdin="x\n")
    assert allowed.returncode == 0, allowed.stderr
    assert store.read_bytes() != before


def test_lock_files_of_a_checkout_are_git_ignored() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", "instances.d/40000.lock"],
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0
