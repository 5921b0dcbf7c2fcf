"""Implicit FTPS with real clients: ftplib (resuming), curl and lftp on an instance with
implicit_ssl, and a plain-text client on its port dropped and logged.

Every transfer is checked byte for byte (sha256 on both ends, the file on disk). The module's
tests share one implicit instance per address family (`implicit_server`).
"""

from __future__ import annotations

import io
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clients import lftp_quote, run_curl, run_lftp
from tests.integration.ftps import (
    CertPair,
    connect_tls,
    sha256_hex,
    tls_payload,
    tls_settings,
)
from tests.integration.ftps_runs import SIZES, curl_url, on_disk
from tests.integration.raw_ftp import read_until_closed
from tests.integration.servers import HOSTS, Server, start_server, wait_for_log

TIMEOUT = 10


# -- implicit FTPS -------------------------------------------------------------------------


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def implicit_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_cert: CertPair
) -> Iterator[Server]:
    """An implicit-FTPS instance (TLS from the first byte, as on port 990)."""
    srv = start_server(
        tmp_path_factory.mktemp("implicit"),
        request.param,
        **tls_settings(tls_cert, implicit_ssl=True),
    )
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture
def implicit_dir(implicit_server: Server, request: pytest.FixtureRequest) -> str:
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:80]
    (implicit_server.home / name).mkdir(parents=True, exist_ok=True)
    return "/" + name


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_implicit_ftplib_transfers_are_byte_exact(
    implicit_server: Server, implicit_dir: str, passive: bool
) -> None:
    data = tls_payload(SIZES["large"], seed=7)
    ftp = connect_tls(implicit_server, implicit=True, timeout=TIMEOUT)
    try:
        assert isinstance(ftp.sock, ssl.SSLSocket)
        assert (ftp.welcome or "").startswith("220")
        ftp.set_pasv(passive)
        ftp.cwd(implicit_dir)
        stored = ftp.storbinary("STOR imp.bin", io.BytesIO(data))
        chunks: list[bytes] = []
        fetched = ftp.retrbinary("RETR imp.bin", chunks.append)
        lines: list[str] = []
        listed = ftp.retrlines("LIST", lines.append)
        facts = dict(ftp.mlsd())
    finally:
        ftp.close()

    assert stored.startswith("226")
    assert fetched.startswith("226")
    assert listed.startswith("226")
    assert sha256_hex(b"".join(chunks)) == sha256_hex(data)
    assert on_disk(implicit_server, implicit_dir).joinpath("imp.bin").read_bytes() == data
    assert len(lines) == 1
    assert lines[0].endswith(" imp.bin")
    assert f" {len(data)} " in lines[0]
    assert facts["imp.bin"]["size"] == str(len(data))


def test_implicit_curl_ftps_url_transfers_are_byte_exact(
    implicit_server: Server, implicit_dir: str, tmp_path: Path
) -> None:
    data = tls_payload(SIZES["large"], seed=8)
    (tmp_path / "up.bin").write_bytes(data)
    base = curl_url(implicit_server, f"{implicit_dir}/", implicit=True)

    put = run_curl("-k", "-T", str(tmp_path / "up.bin"), base + "up.bin")
    get = run_curl("-k", base + "up.bin")
    listing = run_curl("-k", base)
    facts = run_curl("-k", "-X", "MLSD", base)

    for run in (put, get, listing, facts):
        assert run.returncode == 0, run.stderr[-2000:]
        # Implicit FTPS: no AUTH, but the data channel is still switched to TLS.
        assert not any(line.startswith("AUTH") for line in run.sent), run.sent
        assert "PROT P" in run.sent, run.sent
    assert on_disk(implicit_server, implicit_dir).joinpath("up.bin").read_bytes() == data
    assert sha256_hex(get.stdout) == sha256_hex(data)
    assert re.search(rb" up\.bin\r?\n$", listing.stdout)
    assert re.fullmatch(rb"type=file;size=%d;\S+ up\.bin\r?\n" % len(data), facts.stdout)


def test_implicit_lftp_ftps_url_transfers_are_byte_exact(
    implicit_server: Server, implicit_dir: str, tmp_path: Path
) -> None:
    data = tls_payload(SIZES["large"], seed=9)
    (tmp_path / "up.bin").write_bytes(data)

    run = run_lftp(
        implicit_server,
        f"cd {lftp_quote(implicit_dir)}",
        f"put {lftp_quote(str(tmp_path / 'up.bin'))} -o up.bin",
        f"get up.bin -o {lftp_quote(str(tmp_path / 'down.bin'))}",
        "ls",
        url_scheme="ftps",
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert "AUTH TLS" not in run.sent, run.sent
    assert "PROT P" in run.sent, run.sent
    assert on_disk(implicit_server, implicit_dir).joinpath("up.bin").read_bytes() == data
    assert sha256_hex((tmp_path / "down.bin").read_bytes()) == sha256_hex(data)
    assert run.stdout.decode().rstrip().endswith(" up.bin")


def test_plain_text_client_on_the_implicit_port_is_dropped_and_logged(
    implicit_server: Server, implicit_dir: str
) -> None:
    before = implicit_server.log_text().count("TLS handshake with")
    with socket.create_connection(
        (implicit_server.host, implicit_server.port), timeout=TIMEOUT
    ) as raw:
        raw.sendall(b"USER alice\r\n")
        # Read to EOF (or reset): a TLS alert at most, never a plain FTP reply.
        received = read_until_closed(raw, TIMEOUT)
    logs = wait_for_log(implicit_server, "TLS handshake with", count=before + 1)

    assert not received.startswith(b"220")
    assert b"331" not in received
    failed = re.findall(rf"TLS handshake with {re.escape(implicit_server.host)} failed: .+", logs)
    assert len(failed) == before + 1, logs[-2000:]
    # The instance serves the next client normally.
    ftp = connect_tls(implicit_server, implicit=True, timeout=TIMEOUT)
    try:
        ftp.cwd(implicit_dir)
        assert ftp.storbinary("STOR after.bin", io.BytesIO(b"still serving")).startswith("226")
    finally:
        ftp.close()
    assert (
        on_disk(implicit_server, implicit_dir).joinpath("after.bin").read_bytes()
        == b"still serving"
    )
