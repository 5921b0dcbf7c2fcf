"""The client matrix: real client processes against real instances, on both stacks.

Explicit FTPS with require_ssl_reuse on (the default) and ssl_reuse_scope at its default:
- rclone (Debian's package, Go's crypto/tls) with its default parallelism: `copy`, `check`
  and `purge` of a tree with subdirectories. Its control connections share one client
  session cache, so its data connections resume sessions another of its control connections
  received: with ssl_reuse_scope = "connection" it fails, which is why "user" is the default.
- curl, lftp and wget: an upload, a download and a listing each (wget downloads only).
- ftplib resuming: test_tls_clients.py and test_tls_reuse.py.
Plain FTP: wget and tnftp (tnftp speaks no FTPS).

Rules: every file is compared byte for byte on both ends; the instance log must show no
refused data connection where a client is expected to pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clients import ClientRun, run_curl, run_lftp
from tests.integration.ftps import CertPair, tls_payload, tls_settings
from tests.integration.servers import HOSTS, PASSWORD, Server, start_server, wait_for_log

CLIENT_TIMEOUT = 120
REFUSED = "refused (require_ssl_reuse)"
# A tree with subdirectories: relative path -> size.
TREE = {
    "top.bin": 70_000,
    "empty.txt": 0,
    "a/one.bin": 1_500_000,
    "a/two.txt": 3_000,
    "a/b/deep.bin": 250_000,
    "a/b/c/deeper.txt": 10,
    "d/alone.bin": 600_000,
    "d/more.bin": 40_000,
}


def _need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it)")


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def ftps(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_cert: CertPair
) -> Iterator[Server]:
    """Explicit FTPS, forced logins and data, require_ssl_reuse and ssl_reuse_scope default."""
    srv = start_server(tmp_path_factory.mktemp("matrix"), request.param, **tls_settings(tls_cert))
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def plain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("matrix_plain"), request.param)
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


def write_tree(root: Path) -> dict[str, bytes]:
    files = {}
    for i, (name, size) in enumerate(TREE.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        files[name] = tls_payload(size, seed=70 + i)
        path.write_bytes(files[name])
    return files


def url_host(srv: Server) -> str:
    return f"[{srv.host}]" if ":" in srv.host else srv.host


# -- rclone ----------------------------------------------------------------------------------


def run_rclone(srv: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """rclone with its defaults (4 transfers, 8 checkers, no FTP concurrency limit)."""
    obscured = subprocess.run(
        ["rclone", "obscure", srv.password], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    env = {
        **os.environ,
        "RCLONE_CONFIG": "/nonexistent",  # the on-the-fly ":ftp:" remote, no config file
        # rclone 1.60 joins host and port without brackets.
        "RCLONE_FTP_HOST": url_host(srv),
        "RCLONE_FTP_PORT": str(srv.port),
        "RCLONE_FTP_USER": srv.user,
        "RCLONE_FTP_PASS": obscured,
        "RCLONE_FTP_EXPLICIT_TLS": "true",
        "RCLONE_FTP_NO_CHECK_CERTIFICATE": "true",
    }
    bounded = ["--retries", "1", "--low-level-retries", "1", "--contimeout", "10s"]
    return subprocess.run(
        ["rclone", *args, *bounded, "--timeout", "30s"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_rclone_copies_checks_and_purges_a_tree_with_reuse_required(
    ftps: Server, tmp_path: Path
) -> None:
    _need("rclone")
    files = write_tree(tmp_path / "src")
    before = ftps.log_text().count(REFUSED)

    copied = run_rclone(ftps, "copy", str(tmp_path / "src"), ":ftp:rclone_tree")
    on_server = {
        name: (ftps.home / "rclone_tree" / name).read_bytes()
        for name in files
        if (ftps.home / "rclone_tree" / name).is_file()
    }
    checked = run_rclone(ftps, "check", str(tmp_path / "src"), ":ftp:rclone_tree")
    downloaded = run_rclone(ftps, "copy", ":ftp:rclone_tree", str(tmp_path / "back"))
    purged = run_rclone(ftps, "purge", ":ftp:rclone_tree")

    refusals = [line for line in ftps.log_text().splitlines() if REFUSED in line]
    assert copied.returncode == 0, (copied.stderr[-2000:], refusals[-5:])
    assert on_server == files
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert downloaded.returncode == 0, downloaded.stderr[-3000:]
    for name, data in files.items():
        assert (tmp_path / "back" / name).read_bytes() == data, name
    assert purged.returncode == 0, purged.stderr[-3000:]
    assert not (ftps.home / "rclone_tree").exists()
    assert ftps.log_text().count(REFUSED) == before


def test_rclone_needs_the_user_scope_its_connections_share_sessions(
    tls_cert: CertPair, tmp_path: Path
) -> None:
    # The measurement behind the default: with sessions bound to their own control
    # connection, rclone's data connections present the newest session any of its control
    # connections received (Go's client session cache has one entry per server name).
    _need("rclone")
    srv = start_server(
        tmp_path / "srv", "127.0.0.1", **tls_settings(tls_cert, ssl_reuse_scope="connection")
    )
    try:
        write_tree(tmp_path / "src")
        copied = run_rclone(srv, "copy", str(tmp_path / "src"), ":ftp:strict")
    finally:
        srv.stop()

    assert copied.returncode != 0
    assert "522 SSL connection failed: session reuse required" in copied.stderr
    assert "resumed the session of another control connection (#" in srv.log_text()


# -- curl, lftp, wget over explicit FTPS -----------------------------------------------------


def test_curl_uploads_downloads_and_lists(ftps: Server, tmp_path: Path) -> None:
    data = tls_payload(800_000, seed=80)
    (tmp_path / "c.bin").write_bytes(data)
    (ftps.home / "matrix_curl").mkdir(exist_ok=True)
    before = ftps.log_text().count(REFUSED)

    put = run_curl(
        "--ssl-reqd", "-k", "-T", str(tmp_path / "c.bin"), ftps.url("/matrix_curl/c.bin")
    )
    got = run_curl("--ssl-reqd", "-k", ftps.url("/matrix_curl/c.bin"))
    listed = run_curl("--ssl-reqd", "-k", ftps.url("/matrix_curl/"))

    for run in (put, got, listed):
        assert run.returncode == 0, run.stderr[-3000:]
    assert (ftps.home / "matrix_curl" / "c.bin").read_bytes() == data
    assert got.stdout == data
    assert b" c.bin" in listed.stdout
    assert ftps.log_text().count(REFUSED) == before


def test_lftp_mirrors_a_tree_both_ways(ftps: Server, tmp_path: Path) -> None:
    files = write_tree(tmp_path / "src")
    before = ftps.log_text().count(REFUSED)

    run: ClientRun = run_lftp(
        ftps,
        f"mirror -R {tmp_path / 'src'} /matrix_lftp",
        f"mirror /matrix_lftp {tmp_path / 'back'}",
        "cls -1 /matrix_lftp/a/b",
    )

    assert run.returncode == 0, run.stderr[-3000:]
    for name, data in files.items():
        assert (ftps.home / "matrix_lftp" / name).read_bytes() == data, name
        assert (tmp_path / "back" / name).read_bytes() == data, name
    assert b"deep.bin" in run.stdout
    assert ftps.log_text().count(REFUSED) == before


def run_client(*command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        command,
        capture_output=True,
        timeout=CLIENT_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=cwd,
    )


# wget (GnuTLS) takes its control connection's session for the data connection right after
# the handshake, and with TLS 1.3 it waits only about a round trip + 60 ms for the server's
# NewSessionTicket (gnutls_session_get_data2). OpenSSL sends the ticket once it has read the
# client's Finished, so when the server process is not scheduled within that time (a loaded
# machine), wget keeps a session it cannot resume, its data connection makes a full handshake,
# and require_ssl_reuse refuses it with 522, as it must. That race is wget's, not the
# transfer's: an attempt that ends exactly so is tried again, up to WGET_ATTEMPTS in all.
WGET_ATTEMPTS = 5
WGET_MISSED_TICKET = b"522 SSL connection failed: session reuse required"
NOT_RESUMED = "did not resume a TLS session; " + REFUSED


def wget_missed_ticket(srv: Server, run: subprocess.CompletedProcess[bytes], before: str) -> bool:
    """Whether a failed wget run was the missed-ticket race: its 522, and that one refusal."""
    if run.returncode == 0 or WGET_MISSED_TICKET not in run.stderr:
        return False
    # The refusal is logged before the 522 goes out, but written by the logging thread.
    logs = wait_for_log(srv, NOT_RESUMED, count=before.count(NOT_RESUMED) + 1)
    return (
        logs.count(NOT_RESUMED) == before.count(NOT_RESUMED) + 1
        and logs.count(REFUSED) == before.count(REFUSED) + 1
    )


def test_wget_downloads_over_explicit_ftps_resuming(ftps: Server, tmp_path: Path) -> None:
    # wget's ftps:// is explicit FTPS (AUTH TLS); --ftps-resume-ssl is its default.
    _need("wget")
    data = tls_payload(500_000, seed=81)
    (ftps.home / "matrix_wget").mkdir(exist_ok=True)
    (ftps.home / "matrix_wget" / "w.bin").write_bytes(data)
    refused_before = ftps.log_text().count(REFUSED)
    url = f"ftps://{ftps.user}:{PASSWORD.replace(' ', '%20')}@{url_host(ftps)}:{ftps.port}"

    missed = 0
    for _ in range(WGET_ATTEMPTS):
        before = ftps.log_text()
        run = run_client(
            "wget", "--no-check-certificate", "--tries=1", "--timeout=20", "-O", "w.bin",
            f"{url}/matrix_wget/w.bin", cwd=tmp_path,
        )  # fmt: skip
        if not wget_missed_ticket(ftps, run, before):
            break
        missed += 1

    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "w.bin").read_bytes() == data
    logs = ftps.log_text()
    # The only refusals are those of the missed tickets tried again above.
    assert logs.count(REFUSED) == refused_before + missed
    assert '"PROT P"' in logs


# -- plain FTP: wget and tnftp ---------------------------------------------------------------


def test_wget_downloads_over_plain_ftp(plain: Server, tmp_path: Path) -> None:
    _need("wget")
    data = tls_payload(400_000, seed=82)
    (plain.home / "pw.bin").write_bytes(data)

    run = run_client(
        "wget", "--tries=1", "--timeout=20", "-O", "pw.bin", plain.url("/pw.bin"), cwd=tmp_path
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "pw.bin").read_bytes() == data


def test_tnftp_uploads_and_downloads_over_plain_ftp(plain: Server, tmp_path: Path) -> None:
    _need("tnftp")
    data = tls_payload(450_000, seed=83)
    (tmp_path / "tn.bin").write_bytes(data)
    (plain.home / "matrix_tnftp").mkdir(exist_ok=True)

    # tnftp sends STOR with the local name as given: a bare name, from the file's directory.
    put = run_client("tnftp", "-u", plain.url("/matrix_tnftp/"), "tn.bin", cwd=tmp_path)
    got = run_client("tnftp", "-o", "back.bin", plain.url("/matrix_tnftp/tn.bin"), cwd=tmp_path)

    assert put.returncode == 0, put.stderr[-3000:]
    assert (plain.home / "matrix_tnftp" / "tn.bin").read_bytes() == data
    assert got.returncode == 0, got.stderr[-3000:]
    assert (tmp_path / "back.bin").read_bytes() == data
