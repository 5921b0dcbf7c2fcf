"""TLS 1.3 uploads arrive complete, and an upload cut short (TLS 1.2 or 1.3) is never 226.

Background: a server that sends TLS 1.3 session tickets on an upload's data connection leaves
bytes the client never reads; the client's kernel then answers its close with RST, which can
destroy the tail of the upload (vsftpd#7, proftpd#959). ftpsup issues no tickets on data
connections, and with strict_ssl_read_eof (the default) only close_notify proves an upload
complete.

Rules: every upload is checked byte for byte on disk; each curl run is one upload (curl cannot
make two TLS 1.3 data connections on one control connection against a server that enforces
session reuse, see test_tls_reuse.py); lftp puts many files in one session.
"""

from __future__ import annotations

import concurrent.futures
import ftplib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.clients import ClientRun, lftp_quote, run_curl, run_lftp
from tests.integration.ftps import (
    CertPair,
    connect_tls,
    control_session,
    sha256_hex,
    tls_payload,
    tls_settings,
    wrap_data,
)
from tests.integration.raw_ftp import open_data
from tests.integration.servers import HOSTS, Server, start_server, wait_for_log

TIMEOUT = 10
UPLOADS = 40
UPLOAD_SIZE = 200_000
CURL_PARALLEL = 6
ServerFactory = Callable[..., Server]
# A few distinct payloads, so a file that got another upload's bytes is caught too.
PAYLOADS = [tls_payload(UPLOAD_SIZE, seed=40 + i) for i in range(4)]


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def tls13(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_cert: CertPair
) -> Iterator[Server]:
    """A TLS 1.3-only forced-FTPS instance."""
    srv = start_server(
        tmp_path_factory.mktemp("tls13"),
        request.param,
        **tls_settings(tls_cert, ssl_tlsv1_2=False, ssl_tlsv1_3=True),
    )
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture
def sources(tmp_path: Path) -> list[Path]:
    paths = []
    for i, data in enumerate(PAYLOADS):
        path = tmp_path / f"payload{i}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def assert_all_arrived(srv: Server, directory: str, prefix: str) -> None:
    for i in range(UPLOADS):
        got = (srv.home / directory / f"{prefix}{i}.bin").read_bytes()
        assert len(got) == UPLOAD_SIZE, f"{prefix}{i}.bin: {len(got)} of {UPLOAD_SIZE} bytes"
        assert sha256_hex(got) == sha256_hex(PAYLOADS[i % len(PAYLOADS)]), f"{prefix}{i}.bin"


def test_forty_curl_uploads_over_tls_1_3_arrive_complete(
    tls13: Server, sources: list[Path]
) -> None:
    (tls13.home / "curl").mkdir(exist_ok=True)

    def upload(i: int) -> ClientRun:
        source = str(sources[i % len(sources)])
        return run_curl("--ssl-reqd", "-k", "--tlsv1.3", "-T", source, tls13.url(f"/curl/c{i}.bin"))

    # A few at a time: concurrent sessions are part of the test, and it stays quick.
    with concurrent.futures.ThreadPoolExecutor(max_workers=CURL_PARALLEL) as pool:
        runs = list(pool.map(upload, range(UPLOADS)))

    for i, run in enumerate(runs):
        assert run.returncode == 0, f"upload {i}: {run.stderr[-2000:]}"
        assert "PROT P" in run.sent
        # One ticket comes on the control connection at login; the data connection gets none.
        assert run.stderr.count("Newsession Ticket") == 1, run.stderr[-3000:]
    assert_all_arrived(tls13, "curl", "c")
    assert "FAIL UPLOAD" not in tls13.log_text()


def test_forty_lftp_uploads_over_tls_1_3_arrive_complete(
    tls13: Server, sources: list[Path]
) -> None:
    (tls13.home / "lftp").mkdir(exist_ok=True)
    puts = [f"put {lftp_quote(str(sources[i % len(sources)]))} -o l{i}.bin" for i in range(UPLOADS)]

    run = run_lftp(tls13, "cd /lftp", *puts)

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.sent.count("PROT P") == 1
    assert run.sent.count(f"USER {tls13.user}") == 1
    assert len([line for line in run.sent if line.startswith("STOR ")]) == UPLOADS
    assert_all_arrived(tls13, "lftp", "l")
    assert "FAIL UPLOAD" not in tls13.log_text()


def cut_short_upload(srv: Server, name: str, sent: bytes) -> tuple[str, str | None]:
    """Send part of an upload over TLS, then close without close_notify.

    Returns:
        The final reply, and the data connection's TLS version.
    """
    ftp = connect_tls(srv, timeout=TIMEOUT)
    try:
        conn, _ = open_data(ftp, "EPSV", f"STOR {name}")
        tls = wrap_data(ftp, conn, session=control_session(ftp))
        version = tls.version()
        tls.sendall(sent)
        # close() without unwrap(): the TCP connection ends with FIN, no TLS close_notify, as
        # when a client dies or a middlebox cuts the connection.
        tls.close()
        try:
            return ftp.voidresp(), version
        except ftplib.Error as exc:
            return str(exc), version
    finally:
        ftp.close()


def xferlog_entry(srv: Server, name: str) -> list[str]:
    """The xferlog line (as fields) that records file `name` in the user's home, polled."""
    xferlog = srv.log_dir / "test" / "xferlog"
    path = str(srv.home / name)  # xferlog names the file on disk, as vsftpd does
    deadline = time.monotonic() + TIMEOUT
    while True:
        text = xferlog.read_text() if xferlog.exists() else ""
        found = [line.split() for line in text.splitlines() if line.split()[8:9] == [path]]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, text
            return found[0]
        time.sleep(0.05)


TLS_VERSIONS = {"TLSv1.2": {"ssl_tlsv1_3": False}, "TLSv1.3": {"ssl_tlsv1_2": False}}


@pytest.mark.parametrize("version", sorted(TLS_VERSIONS))
@pytest.mark.parametrize("host", HOSTS)
def test_upload_cut_short_without_close_notify_is_answered_426(
    server_factory: ServerFactory, tls_cert: CertPair, host: str, version: str
) -> None:
    srv = server_factory(host, **tls_settings(tls_cert, **TLS_VERSIONS[version]))
    part = tls_payload(UPLOAD_SIZE, seed=50)[: UPLOAD_SIZE // 2]

    reply, used = cut_short_upload(srv, "short.bin", part)
    logs = wait_for_log(srv, "FAIL UPLOAD")

    assert used == version
    assert reply.startswith("426 "), reply
    assert re.search(r'FAIL UPLOAD: Client "[^"]+", "/short.bin"', logs), logs[-2000:]
    assert "OK UPLOAD" not in logs
    # xferlog(5): direction i(ncoming), completion status i(ncomplete), with the bytes kept.
    entry = xferlog_entry(srv, "short.bin")
    assert (entry[7], entry[11], entry[17]) == (str(len(part)), "i", "i"), entry
    # Every byte that did arrive is kept (a later REST/APPE can resume), but it is not "done".
    assert (srv.home / "short.bin").read_bytes() == part


@pytest.mark.parametrize("version", sorted(TLS_VERSIONS))
@pytest.mark.parametrize("host", HOSTS)
def test_upload_without_close_notify_is_accepted_when_strict_ssl_read_eof_is_false(
    server_factory: ServerFactory, tls_cert: CertPair, host: str, version: str
) -> None:
    settings = tls_settings(tls_cert, strict_ssl_read_eof=False, **TLS_VERSIONS[version])
    srv = server_factory(host, **settings)
    data = tls_payload(50_000, seed=51)

    reply, used = cut_short_upload(srv, "lenient.bin", data)

    # vsftpd's behaviour before 3.0.3: a bare FIN ends the upload, so truncation goes unseen.
    assert used == version
    assert reply.startswith("226"), reply
    assert (srv.home / "lenient.bin").read_bytes() == data
    entry = xferlog_entry(srv, "lenient.bin")
    assert (entry[7], entry[17]) == (str(len(data)), "c"), entry


def test_abor_of_a_tls_upload_keeps_only_plaintext(tls13: Server) -> None:
    # ABOR must stop the copy without tearing down the TLS state under it: the bytes kept on
    # disk are a prefix of what the client sent, never ciphertext.
    payload = tls_payload(8_000_000, seed=77)
    ftp = connect_tls(tls13, timeout=TIMEOUT)
    try:
        conn, _ = open_data(ftp, "EPSV", "STOR aborted_tls.bin")
        tls = wrap_data(ftp, conn, session=control_session(ftp))
        tls.sendall(payload[:3_000_000])
        ftp.putcmd("ABOR")
        replies = [ftp.getmultiline()[:3], ftp.getmultiline()[:3]]
        tls.close()
        assert ftp.voidcmd("NOOP").startswith("200")
    finally:
        ftp.close()

    kept = (tls13.home / "aborted_tls.bin").read_bytes()
    assert replies == ["426", "226"], replies
    assert 0 < len(kept) <= 3_000_000
    assert kept == payload[: len(kept)]
