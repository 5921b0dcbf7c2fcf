"""Python's ftplib against a real ftpsup instance: transfers, resume, abort, listings, file verbs.

Rules:
- Every test runs on IPv4 and IPv6 (the module-scoped `server` fixture); the data mode is
  chosen by hand (PASV, EPSV, PORT, EPRT) where the mode is what is tested, EPSV otherwise,
  since it is the one mode both families share (RFC 2428).
- Transferred bytes are compared by sha256 with the file on disk in alice's home.
- The last test logs in afresh: nothing the others did may leave the server unusable.
"""

from __future__ import annotations

import calendar
import ftplib
import io
import random
import stat
import time
from collections.abc import Callable, Iterator

import pytest

from tests.integration.ftplib_runs import (
    BIG_FILE,
    MODE,
    is_ipv6,
    on_disk,
    sha,
    start_slow_download,
)
from tests.integration.raw_ftp import (
    DATA_MODES,
    IPV4_ONLY_MODES,
    download,
    open_data,
    recv_all,
    upload,
)
from tests.integration.servers import HOSTS, Server, wait_until

LARGE = 24 * 1024 * 1024
UNICODE_NAME = "é ü 日本.txt"


@pytest.fixture(scope="module")
def payloads() -> dict[str, bytes]:
    rng = random.Random(20261127)
    return {"empty": b"", "small": rng.randbytes(1500), "large": rng.randbytes(LARGE)}


@pytest.fixture(scope="module")
def big_file(server: Server, payloads: dict[str, bytes]) -> bytes:
    """A large file at /big.bin for the tests that need a transfer still running."""
    on_disk(server, BIG_FILE).write_bytes(payloads["large"])
    return payloads["large"]


@pytest.fixture
def ftp(server: Server) -> Iterator[ftplib.FTP]:
    with server.connect() as client:
        yield client


# -- byte-exact transfers in every data mode --------------------------------------------------


@pytest.mark.parametrize("mode", DATA_MODES)
@pytest.mark.parametrize("size", ["empty", "small", pytest.param("large", marks=pytest.mark.slow)])
def test_upload_and_download_are_byte_exact(
    server: Server, ftp: ftplib.FTP, workdir: str, payloads: dict[str, bytes], mode: str, size: str
) -> None:
    if is_ipv6(server) and mode in IPV4_ONLY_MODES:
        pytest.skip(f"{mode} is IPv4 only (refusal tested below)")
    data = payloads[size]
    path = f"{workdir}/{size}-{mode}.bin"
    assert upload(ftp, mode, f"STOR {path}", data).startswith("226")
    assert sha(on_disk(server, path).read_bytes()) == sha(data)
    assert sha(download(ftp, mode, f"RETR {path}")) == sha(data)


@pytest.mark.parametrize("mode", sorted(IPV4_ONLY_MODES))
def test_pasv_and_port_are_refused_with_522_on_ipv6(
    server: Server, ftp: ftplib.FTP, workdir: str, mode: str
) -> None:
    if not is_ipv6(server):
        pytest.skip("IPv4 accepts PASV and PORT")
    with pytest.raises(ftplib.error_perm, match="^522"):
        open_data(ftp, mode, f"NLST {workdir}")
    assert download(ftp, "EPRT", f"NLST {workdir}") == b""


# -- TYPE A ---------------------------------------------------------------------------------


def test_type_a_upload_stores_lf_line_ends(server: Server, ftp: ftplib.FTP, workdir: str) -> None:
    ftp.storlines(f"STOR {workdir}/lines.txt", io.BytesIO(b"one\ntwo\n\nthree\n"))
    assert on_disk(server, f"{workdir}/lines.txt").read_bytes() == b"one\ntwo\n\nthree\n"
    ftp.sendcmd("TYPE A")
    upload(ftp, MODE, f"STOR {workdir}/wire.txt", b"alpha\r\nbeta\r\n")
    assert on_disk(server, f"{workdir}/wire.txt").read_bytes() == b"alpha\nbeta\n"


def test_type_a_download_sends_crlf_for_each_lf(
    server: Server, ftp: ftplib.FTP, workdir: str
) -> None:
    content = b"one\ntwo\n\nthree\n" * 1000 + b"tail"
    on_disk(server, f"{workdir}/text.txt").write_bytes(content)
    ftp.sendcmd("TYPE A")
    wire = download(ftp, MODE, f"RETR {workdir}/text.txt")
    assert wire == content.replace(b"\n", b"\r\n")
    ftp.sendcmd("TYPE I")
    assert download(ftp, MODE, f"RETR {workdir}/text.txt") == content


# -- REST -----------------------------------------------------------------------------------


def test_rest_then_retr_sends_the_file_from_the_offset(
    server: Server, ftp: ftplib.FTP, workdir: str, payloads: dict[str, bytes]
) -> None:
    data = payloads["small"]
    on_disk(server, f"{workdir}/f.bin").write_bytes(data)
    assert ftp.sendcmd("REST 1000").startswith("350")
    assert download(ftp, MODE, f"RETR {workdir}/f.bin") == data[1000:]
    chunks: list[bytes] = []
    ftp.retrbinary(f"RETR {workdir}/f.bin", chunks.append, rest=1499)
    assert b"".join(chunks) == data[1499:]


def test_rest_then_stor_resumes_an_upload(
    server: Server, ftp: ftplib.FTP, workdir: str, payloads: dict[str, bytes]
) -> None:
    data = payloads["small"]
    path = f"{workdir}/resumed.bin"
    upload(ftp, MODE, f"STOR {path}", data[:700] + b"garbage after the cut")
    ftp.storbinary(f"STOR {path}", io.BytesIO(data[700:]), rest=700)
    assert sha(on_disk(server, path).read_bytes()) == sha(data)


def test_appe_completes_a_partial_upload(
    server: Server, ftp: ftplib.FTP, workdir: str, payloads: dict[str, bytes]
) -> None:
    data = payloads["small"]
    path = f"{workdir}/appended.bin"
    upload(ftp, MODE, f"STOR {path}", data[:500])
    assert upload(ftp, MODE, f"APPE {path}", data[500:]).startswith("226")
    assert sha(download(ftp, MODE, f"RETR {path}")) == sha(data)


def test_rest_beyond_the_size_replies_554(server: Server, ftp: ftplib.FTP, workdir: str) -> None:
    on_disk(server, f"{workdir}/short.txt").write_bytes(b"12345")
    ftp.sendcmd("REST 6")
    with pytest.raises(ftplib.error_perm, match="^554"):
        open_data(ftp, MODE, f"RETR {workdir}/short.txt")
    ftp.sendcmd("REST 6")
    with pytest.raises(ftplib.error_perm, match="^554"):
        open_data(ftp, MODE, f"STOR {workdir}/short.txt")
    assert on_disk(server, f"{workdir}/short.txt").read_bytes() == b"12345"
    # REST is spent by the refused command: the next RETR starts at 0.
    assert download(ftp, MODE, f"RETR {workdir}/short.txt") == b"12345"


# -- STOU -----------------------------------------------------------------------------------


def test_stou_names_a_new_file_in_its_150_reply(
    server: Server, ftp: ftplib.FTP, workdir: str
) -> None:
    names = []
    for content in (b"first", b"second"):
        conn, preliminary = open_data(ftp, MODE, f"STOU {workdir}/report")
        with conn:
            conn.sendall(content)
        assert ftp.voidresp().startswith("226")
        assert preliminary.startswith("150 FILE: ")
        name = preliminary.removeprefix("150 FILE: ")
        assert on_disk(server, f"{workdir}/{name}").read_bytes() == content
        names.append(name)
    assert names[0] != names[1]
    assert all(n.startswith("report") for n in names)


def test_abor_as_urgent_data_stops_a_download(ftp: ftplib.FTP, big_file: bytes) -> None:
    conn, _ = start_slow_download(ftp)
    with conn:
        assert ftp.abort().startswith("426")
        assert ftp.voidresp().startswith("226")
    assert ftp.voidcmd("NOOP").startswith("200")
    assert "big.bin" in ftp.nlst("/")


def test_plain_abor_line_stops_a_download(ftp: ftplib.FTP, big_file: bytes) -> None:
    conn, _ = start_slow_download(ftp)
    with conn:
        ftp.putcmd("ABOR")
        assert ftp.getmultiline().startswith("426")
        assert ftp.getmultiline().startswith("226")
    assert ftp.voidcmd("NOOP").startswith("200")
    lines: list[str] = []
    ftp.dir("/", lines.append)
    assert any(line.endswith(" big.bin") for line in lines)


def test_abor_of_an_upload_keeps_the_received_prefix(
    server: Server, ftp: ftplib.FTP, workdir: str, payloads: dict[str, bytes]
) -> None:
    other = on_disk(server, f"{workdir}/other.txt")
    other.write_bytes(b"untouched")
    before = other.stat()
    target = on_disk(server, f"{workdir}/partial.bin")
    sent = payloads["large"][: 1024 * 1024]
    conn, _ = open_data(ftp, MODE, f"STOR {workdir}/partial.bin")
    with conn:
        conn.sendall(sent)
        wait_until(
            lambda: target.exists() and target.stat().st_size > 0, "the upload's first bytes"
        )
        assert ftp.abort().startswith("426")
        assert ftp.voidresp().startswith("226")
    kept = target.read_bytes()
    assert 0 < len(kept) <= len(sent)
    assert sent.startswith(kept)
    assert other.read_bytes() == b"untouched"
    assert other.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in target.parent.iterdir()) == ["other.txt", "partial.bin"]


def test_noop_and_stat_are_answered_during_a_download(ftp: ftplib.FTP, big_file: bytes) -> None:
    conn, head = start_slow_download(ftp)
    with conn:
        assert ftp.sendcmd("NOOP").startswith("200")
        status = ftp.sendcmd("STAT")
        assert status.startswith("211")
        assert "bytes so far" in status
        rest = recv_all(conn)
    assert ftp.voidresp().startswith("226")
    assert sha(head + rest) == sha(big_file)


# -- listings and names ---------------------------------------------------------------------


def test_listings_describe_files_and_directories(
    server: Server, ftp: ftplib.FTP, workdir: str
) -> None:
    ftp.storbinary(f"STOR {workdir}/a.txt", io.BytesIO(b"12345"))
    ftp.mkd(f"{workdir}/sub")
    assert {n.rsplit("/", 1)[-1] for n in ftp.nlst(workdir)} == {"a.txt", "sub"}

    facts = dict(ftp.mlsd(workdir))
    mtime = on_disk(server, f"{workdir}/a.txt").stat().st_mtime
    assert facts["a.txt"]["type"] == "file"
    assert facts["a.txt"]["size"] == "5"
    assert facts["a.txt"]["modify"] == time.strftime("%Y%m%d%H%M%S", time.gmtime(mtime))
    assert set(facts["a.txt"]["perm"]) >= set("rwd")
    assert facts["a.txt"]["unix.mode"] == "0644"
    assert facts["sub"]["type"] == "dir"
    assert facts["sub"]["unix.mode"] == "0755"
    assert facts["a.txt"]["unique"]
    assert facts["a.txt"]["unique"] != facts["sub"]["unique"]

    lines: list[str] = []
    ftp.dir(workdir, lines.append)
    rows = {fields[8]: fields for fields in (line.split(None, 8) for line in lines)}
    assert set(rows) == {"a.txt", "sub"}
    assert rows["a.txt"][0] == "-rw-r--r--"
    assert rows["a.txt"][4] == "5"
    assert rows["sub"][0] == "drwxr-xr-x"


def test_unicode_names_with_spaces_round_trip(
    server: Server, ftp: ftplib.FTP, workdir: str
) -> None:
    path = f"{workdir}/{UNICODE_NAME}"
    ftp.storbinary(f"STOR {path}", io.BytesIO("contenu é".encode()))
    assert on_disk(server, path).read_bytes() == "contenu é".encode()
    assert [n.rsplit("/", 1)[-1] for n in ftp.nlst(workdir)] == [UNICODE_NAME]
    assert [name for name, _ in ftp.mlsd(workdir)] == [UNICODE_NAME]
    chunks: list[bytes] = []
    ftp.retrbinary(f"RETR {path}", chunks.append)
    assert b"".join(chunks) == "contenu é".encode()
    renamed = f"{workdir}/日本 ü renamed.txt"
    assert ftp.rename(path, renamed).startswith("250")
    assert not on_disk(server, path).exists()
    assert on_disk(server, renamed).read_bytes() == "contenu é".encode()
    assert ftp.delete(renamed).startswith("250")
    assert list(on_disk(server, workdir).iterdir()) == []


# -- file and directory verbs ---------------------------------------------------------------


def test_mkd_cwd_pwd_cdup_rmd(server: Server, ftp: ftplib.FTP, workdir: str) -> None:
    created = ftp.mkd(f"{workdir}/new dir")
    assert created == f"{workdir}/new dir"
    assert on_disk(server, created).is_dir()
    assert ftp.cwd(created).startswith("250")
    assert ftp.pwd() == created
    assert ftp.sendcmd("CDUP").startswith("250")
    assert ftp.pwd() == workdir
    assert ftp.rmd("new dir").startswith("250")
    assert not on_disk(server, created).exists()
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.cwd("new dir")


def test_rename_delete_and_size(server: Server, ftp: ftplib.FTP, workdir: str) -> None:
    ftp.storbinary(f"STOR {workdir}/old.txt", io.BytesIO(b"x" * 321))
    assert ftp.size(f"{workdir}/old.txt") == 321
    ftp.rename(f"{workdir}/old.txt", f"{workdir}/new.txt")
    assert sorted(p.name for p in on_disk(server, workdir).iterdir()) == ["new.txt"]
    ftp.delete(f"{workdir}/new.txt")
    assert not on_disk(server, f"{workdir}/new.txt").exists()
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.size(f"{workdir}/new.txt")


def test_mfmt_sets_the_time_mdtm_reports(server: Server, ftp: ftplib.FTP, workdir: str) -> None:
    ftp.storbinary(f"STOR {workdir}/dated.txt", io.BytesIO(b"x"))
    disk = on_disk(server, f"{workdir}/dated.txt")
    now = time.strftime("%Y%m%d%H%M%S", time.gmtime(disk.stat().st_mtime))
    assert ftp.sendcmd(f"MDTM {workdir}/dated.txt") == f"213 {now}"
    assert ftp.sendcmd(f"MFMT 20200102030405 {workdir}/dated.txt").startswith("213")
    assert ftp.sendcmd(f"MDTM {workdir}/dated.txt") == "213 20200102030405"
    assert disk.stat().st_mtime == calendar.timegm((2020, 1, 2, 3, 4, 5, 0, 0, 0))


def test_new_files_get_0644_and_directories_0755(
    server: Server, ftp: ftplib.FTP, workdir: str
) -> None:
    ftp.storbinary(f"STOR {workdir}/f", io.BytesIO(b""))
    ftp.mkd(f"{workdir}/d")
    assert stat.S_IMODE(on_disk(server, f"{workdir}/f").stat().st_mode) == 0o644
    assert stat.S_IMODE(on_disk(server, f"{workdir}/d").stat().st_mode) == 0o755


def test_site_chmod_changes_the_mode_on_disk(server: Server, ftp: ftplib.FTP, workdir: str) -> None:
    ftp.storbinary(f"STOR {workdir}/f", io.BytesIO(b"x"))
    ftp.mkd(f"{workdir}/d")
    assert ftp.sendcmd(f"SITE CHMOD 600 {workdir}/f").startswith("200")
    assert ftp.sendcmd(f"SITE CHMOD 711 {workdir}/d").startswith("200")
    assert stat.S_IMODE(on_disk(server, f"{workdir}/f").stat().st_mode) == 0o600
    assert stat.S_IMODE(on_disk(server, f"{workdir}/d").stat().st_mode) == 0o711
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd(f"SITE CHMOD 9z {workdir}/f")


def test_site_umask_applies_to_new_files(server: Server, ftp: ftplib.FTP, workdir: str) -> None:
    assert ftp.sendcmd("SITE UMASK") == "200 Your current UMASK is 022"
    assert ftp.sendcmd("SITE UMASK 077").startswith("200")
    ftp.storbinary(f"STOR {workdir}/private", io.BytesIO(b"x"))
    ftp.mkd(f"{workdir}/private.d")
    assert stat.S_IMODE(on_disk(server, f"{workdir}/private").stat().st_mode) == 0o600
    assert stat.S_IMODE(on_disk(server, f"{workdir}/private.d").stat().st_mode) == 0o700
    assert ftp.sendcmd("SITE UMASK") == "200 Your current UMASK is 077"


@pytest.mark.parametrize("host", HOSTS, ids=["ipv4", "ipv6"])
def test_cwd_shows_the_directory_message(server_factory: Callable[..., Server], host: str) -> None:
    srv = server_factory(host, dirmessage_enable=True)
    (srv.home / "docs").mkdir(parents=True)
    (srv.home / "docs" / ".message").write_text("Read the README first.\nThanks.\n")
    (srv.home / "plain").mkdir()
    with srv.connect() as client:
        answer = client.cwd("/docs")
        assert answer.startswith("250-")
        assert "Read the README first.\n Thanks." in answer
        assert client.cwd("/plain") == "250 Directory successfully changed."


# -- last: the server is still healthy ------------------------------------------------------


def test_fresh_ftplib_login_still_works(server: Server) -> None:
    assert server.process.poll() is None
    with server.connect() as client:
        assert client.pwd() == "/"
        assert client.voidcmd("NOOP").startswith("200")
