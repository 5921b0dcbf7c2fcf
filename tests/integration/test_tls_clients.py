"""Explicit FTPS with real clients: ftplib (resuming), curl and lftp.

Rules:
- Every transfer is PROT P and checked byte for byte (sha256 on both ends, the file on disk);
  the data-connection verb a client used is read from its trace, so a silent fallback to
  another mode (or to clear data) cannot pass for the mode under test.
- ftplib's data connections resume the control connection's TLS session (ReusingFTP_TLS), as
  FileZilla, WinSCP, curl and lftp do; the instances enforce require_ssl_reuse (the default).
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clients import lftp_quote, run_curl, run_lftp
from tests.integration.ftps import (
    ReusingFTP_TLS,
    connect_tls,
    sha256_hex,
    tls_download,
    tls_payload,
    tls_upload,
)
from tests.integration.ftps_runs import SIZES, curl_url, on_disk
from tests.integration.raw_ftp import DATA_MODES, IPV4_ONLY_MODES
from tests.integration.servers import Server

TIMEOUT = 10


def _curl_version() -> tuple[int, ...]:
    out = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=30)
    found = re.match(r"curl (\d+)\.(\d+)\.(\d+)", out.stdout)
    return tuple(int(part) for part in found.groups()) if found else (0,)


# curl 7.87.0 to 7.88.1 skip the TLS handshake on an *active* FTPS data connection and read
# the TLS records as file data (curl/curl#10666, fixed in 8.0.0 by curl/curl#10669).
CURL_ACTIVE_TLS_BROKEN = (7, 87, 0) <= _curl_version() < (8, 0, 0)


@pytest.fixture
def ftps(tls_server: Server, tls_workdir: str) -> Iterator[ReusingFTP_TLS]:
    """alice over explicit FTPS (AUTH TLS, PBSZ 0, PROT P), in the test's workdir."""
    client = connect_tls(tls_server, timeout=TIMEOUT)
    client.cwd(tls_workdir)
    yield client
    client.close()


def skip_ipv4_only(srv: Server, mode: str) -> None:
    if ":" in srv.host and mode in IPV4_ONLY_MODES:
        pytest.skip(f"{mode} is IPv4 only")


# -- ftplib, explicit ----------------------------------------------------------------------


@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("mode", DATA_MODES)
def test_ftplib_prot_p_retr_is_byte_exact(
    ftps: ReusingFTP_TLS, tls_server: Server, tls_workdir: str, mode: str, size_name: str
) -> None:
    skip_ipv4_only(tls_server, mode)
    data = tls_payload(SIZES[size_name])
    on_disk(tls_server, tls_workdir).joinpath("get.bin").write_bytes(data)

    got, final, resumed = tls_download(ftps, mode, "RETR get.bin")

    assert final.startswith("226")
    assert sha256_hex(got) == sha256_hex(data)
    assert resumed


@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("mode", DATA_MODES)
def test_ftplib_prot_p_stor_is_byte_exact(
    ftps: ReusingFTP_TLS, tls_server: Server, tls_workdir: str, mode: str, size_name: str
) -> None:
    skip_ipv4_only(tls_server, mode)
    data = tls_payload(SIZES[size_name], seed=1)

    final, resumed = tls_upload(ftps, mode, "STOR put.bin", data)

    assert final.startswith("226")
    assert resumed
    assert sha256_hex(on_disk(tls_server, tls_workdir).joinpath("put.bin").read_bytes()) == (
        sha256_hex(data)
    )


@pytest.mark.parametrize("mode", DATA_MODES)
def test_ftplib_prot_p_list_and_mlsd_show_the_directory(
    ftps: ReusingFTP_TLS, tls_server: Server, tls_workdir: str, mode: str
) -> None:
    skip_ipv4_only(tls_server, mode)
    on_disk(tls_server, tls_workdir).joinpath("listed.txt").write_bytes(b"12345")

    listing, final_list, _ = tls_download(ftps, mode, "LIST")
    facts, final_mlsd, _ = tls_download(ftps, mode, "MLSD")

    assert final_list.startswith("226")
    assert final_mlsd.startswith("226")
    assert re.search(rb"^-rw\S+ .* 5 .* listed\.txt\r$", listing, re.MULTILINE), listing
    assert re.fullmatch(rb"type=file;size=5;\S+ listed\.txt\r\n", facts), facts


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_ftplib_high_level_calls_work_over_prot_p(ftps: ReusingFTP_TLS, passive: bool) -> None:
    data = tls_payload(200_000, seed=2)
    ftps.set_pasv(passive)

    stored = ftps.storbinary("STOR round.bin", io.BytesIO(data))
    chunks: list[bytes] = []
    fetched = ftps.retrbinary("RETR round.bin", chunks.append)
    names = ftps.nlst()
    facts = dict(ftps.mlsd())

    assert stored.startswith("226")
    assert fetched.startswith("226")
    assert sha256_hex(b"".join(chunks)) == sha256_hex(data)
    assert names == ["round.bin"]
    assert facts["round.bin"]["size"] == str(len(data))


# -- curl, explicit ------------------------------------------------------------------------

CURL_MODES: dict[str, tuple[tuple[str, ...], str, str]] = {
    # name: (curl options, verb sent over IPv4, verb sent over IPv6)
    "epsv": ((), "EPSV", "EPSV"),
    # curl ignores --disable-epsv and --disable-eprt over IPv6 (RFC 2428 §1).
    "pasv": (("--disable-epsv",), "PASV", "EPSV"),
    "eprt": (("--ftp-port", "-"), "EPRT |1|127.0.0.1|", "EPRT |2|::1|"),
    "port": (("--ftp-port", "-", "--disable-eprt"), "PORT 127,0,0,1,", "EPRT |2|::1|"),
}


def curl_mode(srv: Server, name: str) -> tuple[tuple[str, ...], str]:
    options, verb_v4, verb_v6 = CURL_MODES[name]
    if "--ftp-port" in options and CURL_ACTIVE_TLS_BROKEN:
        pytest.skip("this curl does no TLS handshake on active data connections (curl#10666)")
    return options, verb_v6 if ":" in srv.host else verb_v4


def assert_protected(sent: tuple[str, ...], verb: str) -> None:
    """The client switched the data channel to TLS and used the data-connection verb `verb`."""
    assert "PBSZ 0" in sent, sent
    assert "PROT P" in sent, sent
    assert any(line.startswith(verb) for line in sent), sent


@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("mode", CURL_MODES)
def test_curl_ssl_reqd_retr_is_byte_exact(
    tls_server: Server, tls_workdir: str, mode: str, size_name: str
) -> None:
    options, verb = curl_mode(tls_server, mode)
    data = tls_payload(SIZES[size_name], seed=3)
    on_disk(tls_server, tls_workdir).joinpath("get.bin").write_bytes(data)

    run = run_curl("--ssl-reqd", "-k", *options, curl_url(tls_server, f"{tls_workdir}/get.bin"))

    assert run.returncode == 0, run.stderr[-2000:]
    assert sha256_hex(run.stdout) == sha256_hex(data)
    assert_protected(run.sent, verb)
    assert any(line.startswith("AUTH ") for line in run.sent)


@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("mode", CURL_MODES)
def test_curl_ssl_reqd_stor_is_byte_exact(
    tls_server: Server, tls_workdir: str, tmp_path: Path, mode: str, size_name: str
) -> None:
    options, verb = curl_mode(tls_server, mode)
    data = tls_payload(SIZES[size_name], seed=4)
    local = tmp_path / "up.bin"
    local.write_bytes(data)

    run = run_curl(
        "--ssl-reqd",
        "-k",
        *options,
        "-T",
        str(local),
        curl_url(tls_server, f"{tls_workdir}/up.bin"),
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert_protected(run.sent, verb)
    assert "STOR up.bin" in run.sent
    assert sha256_hex(on_disk(tls_server, tls_workdir).joinpath("up.bin").read_bytes()) == (
        sha256_hex(data)
    )


@pytest.mark.parametrize("mode", CURL_MODES)
def test_curl_ssl_reqd_list_and_mlsd(tls_server: Server, tls_workdir: str, mode: str) -> None:
    options, verb = curl_mode(tls_server, mode)
    on_disk(tls_server, tls_workdir).joinpath("seen.txt").write_bytes(b"abc")
    url = curl_url(tls_server, f"{tls_workdir}/")

    listing = run_curl("--ssl-reqd", "-k", *options, url)
    facts = run_curl("--ssl-reqd", "-k", *options, "-X", "MLSD", url)

    assert listing.returncode == 0, listing.stderr[-2000:]
    assert facts.returncode == 0, facts.stderr[-2000:]
    assert_protected(listing.sent, verb)
    assert "LIST" in listing.sent
    assert "MLSD" in facts.sent
    assert re.search(rb"^-rw\S+ .* 3 .* seen\.txt\r?$", listing.stdout, re.MULTILINE)
    # curl turns the CRLF of a TYPE A listing into LF.
    assert re.fullmatch(rb"type=file;size=3;\S+ seen\.txt\r?\n", facts.stdout), facts.stdout


# -- lftp, explicit ------------------------------------------------------------------------

LFTP_MODES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "passive": (("set ftp:passive-mode true",), "PASV", "EPSV"),
    "epsv": (("set ftp:passive-mode true", "set ftp:prefer-epsv true"), "EPSV", "EPSV"),
    # Over IPv6 lftp sends the unspecified address; the server takes it as the client's own.
    "active": (("set ftp:passive-mode false",), "PORT 127,0,0,1,", "EPRT |2|::|"),
}


def lftp_mode(srv: Server, name: str) -> tuple[tuple[str, ...], str]:
    settings, verb_v4, verb_v6 = LFTP_MODES[name]
    return settings, verb_v6 if ":" in srv.host else verb_v4


@pytest.mark.parametrize("mode", LFTP_MODES)
def test_lftp_ssl_force_get_and_put_are_byte_exact(
    tls_server: Server, tls_workdir: str, tmp_path: Path, mode: str
) -> None:
    settings, verb = lftp_mode(tls_server, mode)
    down = tls_payload(SIZES["large"], seed=5)
    up = tls_payload(SIZES["large"] - 1, seed=6)
    on_disk(tls_server, tls_workdir).joinpath("get.bin").write_bytes(down)
    (tmp_path / "up.bin").write_bytes(up)

    run = run_lftp(
        tls_server,
        f"cd {lftp_quote(tls_workdir)}",
        f"get get.bin -o {lftp_quote(str(tmp_path / 'got.bin'))}",
        f"put {lftp_quote(str(tmp_path / 'up.bin'))} -o up.bin",
        settings=settings,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert "AUTH TLS" in run.sent
    assert_protected(run.sent, verb)
    assert "RETR get.bin" in run.sent
    assert "STOR up.bin" in run.sent
    assert sha256_hex((tmp_path / "got.bin").read_bytes()) == sha256_hex(down)
    assert sha256_hex(on_disk(tls_server, tls_workdir).joinpath("up.bin").read_bytes()) == (
        sha256_hex(up)
    )


@pytest.mark.parametrize("mode", LFTP_MODES)
def test_lftp_ssl_force_list_and_mlsd(tls_server: Server, tls_workdir: str, mode: str) -> None:
    settings, verb = lftp_mode(tls_server, mode)
    on_disk(tls_server, tls_workdir).joinpath("seen.txt").write_bytes(b"abcd")

    run = run_lftp(
        tls_server,
        f"cd {lftp_quote(tls_workdir)}",
        "ls",
        "set ftp:use-mlsd true",
        "cls -l",
        settings=settings,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert_protected(run.sent, verb)
    assert "LIST" in run.sent
    assert "MLSD" in run.sent
    lines = run.stdout.decode().splitlines()
    assert re.fullmatch(r"-rw\S+ .* 4 .* seen\.txt", lines[0]), lines
    assert re.fullmatch(r"-rw\S+ +4 .* seen\.txt", lines[1]), lines
