"""curl against a real ftpsup instance: transfers, resume, append, listings and quote commands.

Rules:
- Every curl run has --max-time and a subprocess timeout, so a server fault fails fast.
- Transfers are checked by sha256 of the bytes on both ends; the data-connection verb curl
  used (EPSV, PASV, EPRT, PORT) is read from curl's --verbose trace, so a silent fallback to
  another mode cannot pass for the mode under test.
- The password travels only in the URL given to curl; the server log must show it masked.
"""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.integration.clients import ClientRun, run_curl
from tests.integration.payloads import file_sha256, payload, sha256
from tests.integration.servers import Server

CURL = shutil.which("curl")
if CURL is None:
    pytest.skip("curl is not installed", allow_module_level=True)

MAX_TIME = 60  # seconds, curl --max-time
BIG_SIZE = 24 * 1024 * 1024
# Files above this are removed after each test so repeated runs do not fill the disk.
CLEANUP_THRESHOLD = 1024 * 1024


@attrs.frozen
class Mode:
    """A data-connection mode: curl's options and the verb each address family must show."""

    args: tuple[str, ...]
    verb_v4: str
    verb_v6: str

    def verb(self, server: Server) -> str:
        return self.verb_v6 if ":" in server.host else self.verb_v4


MODES = {
    "epsv": Mode((), "EPSV", "EPSV"),
    # curl ignores --disable-epsv over IPv6, where PASV cannot work (RFC 2428 §1).
    "pasv": Mode(("--disable-epsv",), "PASV", "EPSV"),
    "eprt": Mode(("--ftp-port", "-"), "EPRT |1|127.0.0.1|", "EPRT |2|::1|"),
    # Likewise --disable-eprt is ignored over IPv6.
    "port": Mode(("--ftp-port", "-", "--disable-eprt"), "PORT 127,0,0,1,", "EPRT |2|::1|"),
}
SIZES = {"empty": 0, "small": 1000, "big": BIG_SIZE}


def curl(server: Server, path: str, *args: str, check: bool = True) -> ClientRun:
    """Run curl on `path` (a virtual path, quoted here) of `server` and return its outcome."""
    run = run_curl(*args, server.url(urllib.parse.quote(path)), timeout=MAX_TIME)
    if check:
        assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(autouse=True)
def _drop_big_files(request: pytest.FixtureRequest) -> Iterator[None]:
    roots: list[Path] = []
    if "workdir" in request.fixturenames:
        server: Server = request.getfixturevalue("server")
        roots.append(server.home / request.getfixturevalue("workdir").lstrip("/"))
    if "tmp_path" in request.fixturenames:
        roots.append(request.getfixturevalue("tmp_path"))
    yield
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size > CLEANUP_THRESHOLD:
                path.unlink()


@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("mode_name", MODES)
def test_download_is_byte_exact(
    server: Server, workdir: str, tmp_path: Path, mode_name: str, size_name: str
) -> None:
    mode = MODES[mode_name]
    data = payload(SIZES[size_name])
    (server.home / workdir[1:] / "file.bin").write_bytes(data)
    local = tmp_path / "file.bin"

    run = curl(server, f"{workdir}/file.bin", *mode.args, "--output", str(local))

    assert any(c.startswith(mode.verb(server)) for c in run.sent), run.sent
    assert "RETR file.bin" in run.sent
    assert file_sha256(local) == sha256(data)


@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("mode_name", MODES)
def test_upload_is_byte_exact(
    server: Server, workdir: str, tmp_path: Path, mode_name: str, size_name: str
) -> None:
    mode = MODES[mode_name]
    data = payload(SIZES[size_name])
    local = tmp_path / "up.bin"
    local.write_bytes(data)

    run = curl(server, f"{workdir}/up.bin", *mode.args, "--upload-file", str(local))

    assert any(c.startswith(mode.verb(server)) for c in run.sent), run.sent
    assert "STOR up.bin" in run.sent
    assert file_sha256(server.home / workdir[1:] / "up.bin") == sha256(data)


def test_ascii_download_needs_no_size_and_keeps_the_lines(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    (server.home / workdir[1:] / "notes.txt").write_bytes(b"one\ntwo\n")
    local = tmp_path / "notes.txt"

    run = curl(server, f"{workdir}/notes.txt", "--use-ascii", "--output", str(local))

    # SIZE is refused in TYPE A; curl does not ask it for an ASCII download.
    assert "TYPE A" in run.sent
    assert not [c for c in run.sent if c.startswith("SIZE")]
    # The server sent CRLF line ends; curl turns them back into the local LF.
    assert local.read_bytes() == b"one\ntwo\n"


def test_upload_replaces_a_longer_file(server: Server, workdir: str, tmp_path: Path) -> None:
    remote = server.home / workdir[1:] / "f.txt"
    remote.write_bytes(b"x" * 5000)
    local = tmp_path / "f.txt"
    local.write_bytes(b"short")

    curl(server, f"{workdir}/f.txt", "--upload-file", str(local))

    assert remote.read_bytes() == b"short"


def test_resumed_download_fetches_only_the_rest(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    data = payload(3 * 1024 * 1024 + 17)
    (server.home / workdir[1:] / "r.bin").write_bytes(data)
    local = tmp_path / "r.bin"
    local.write_bytes(data[:1_000_003])

    run = curl(server, f"{workdir}/r.bin", "--continue-at", "-", "--output", str(local))

    assert "REST 1000003" in run.sent
    assert file_sha256(local) == sha256(data)


def test_resumed_upload_sends_only_the_rest(server: Server, workdir: str, tmp_path: Path) -> None:
    data = payload(2 * 1024 * 1024 + 5)
    remote = server.home / workdir[1:] / "u.bin"
    remote.write_bytes(data[:777_777])
    local = tmp_path / "u.bin"
    local.write_bytes(data)

    run = curl(server, f"{workdir}/u.bin", "--continue-at", "-", "--upload-file", str(local))

    # curl learns the remote size with SIZE and then appends the remainder.
    assert "SIZE u.bin" in run.sent
    assert "APPE u.bin" in run.sent
    assert file_sha256(remote) == sha256(data)


def test_append_adds_to_the_end_of_the_remote_file(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    remote = server.home / workdir[1:] / "log.txt"
    remote.write_bytes(b"first\r\n")
    local = tmp_path / "more.txt"
    local.write_bytes(b"second\n\x00third")

    run = curl(server, f"{workdir}/log.txt", "--append", "--upload-file", str(local))

    assert "APPE log.txt" in run.sent
    assert remote.read_bytes() == b"first\r\nsecond\n\x00third"


def test_append_to_a_missing_file_creates_it(server: Server, workdir: str, tmp_path: Path) -> None:
    local = tmp_path / "new.txt"
    local.write_bytes(b"fresh")

    curl(server, f"{workdir}/new.txt", "--append", "--upload-file", str(local))

    assert (server.home / workdir[1:] / "new.txt").read_bytes() == b"fresh"


TREE_NAMES = {"a.txt", "b c.bin", "ünïcødé.txt", "sub"}


def make_tree(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "b c.bin").write_bytes(b"\x00\x01\x02")
    (root / "ünïcødé.txt").write_bytes("ünï\n".encode())
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")


def test_directory_url_lists_every_entry(server: Server, workdir: str) -> None:
    make_tree(server.home / workdir[1:])

    run = curl(server, f"{workdir}/")

    assert any(c == "LIST" for c in run.sent), run.sent
    rows = run.stdout.decode("utf-8").splitlines()
    assert {row.split(None, 8)[8] for row in rows} == TREE_NAMES
    (sub_row,) = [row for row in rows if row.endswith(" sub")]
    assert sub_row.startswith("d")


def test_list_only_gives_the_bare_names(server: Server, workdir: str) -> None:
    make_tree(server.home / workdir[1:])

    run = curl(server, f"{workdir}/", "--list-only")

    assert "NLST" in run.sent
    assert set(run.stdout.decode("utf-8").splitlines()) == TREE_NAMES


def test_listing_of_a_subdirectory_with_a_utf8_name(server: Server, workdir: str) -> None:
    sub = server.home / workdir[1:] / "dïr ä"
    sub.mkdir()
    (sub / "x y.txt").write_bytes(b"x")

    run = curl(server, f"{workdir}/dïr ä/", "--list-only")

    assert run.stdout.splitlines() == [b"x y.txt"]


def test_quote_mkd_makes_a_directory(server: Server, workdir: str) -> None:
    run = curl(server, f"{workdir}/", "--list-only", "--quote", f"MKD {workdir}/made here")

    assert (server.home / workdir[1:] / "made here").is_dir()
    assert f"MKD {workdir}/made here" in run.sent
    # The quote runs before the listing, so the new directory is already in it.
    assert run.stdout.splitlines() == [b"made here"]


def test_quote_dele_removes_a_file(server: Server, workdir: str) -> None:
    (server.home / workdir[1:] / "y").write_bytes(b"doomed")

    curl(server, f"{workdir}/", "--list-only", "--quote", f"DELE {workdir}/y")

    assert not (server.home / workdir[1:] / "y").exists()


def test_quote_rnfr_rnto_renames_a_file(server: Server, workdir: str) -> None:
    home = server.home / workdir[1:]
    (home / "a").write_bytes(b"contents")

    curl(
        server, f"{workdir}/", "--list-only",
        "--quote", f"RNFR {workdir}/a", "--quote", f"RNTO {workdir}/b",
    )  # fmt: skip

    assert not (home / "a").exists()
    assert (home / "b").read_bytes() == b"contents"


def test_post_quote_deletes_the_file_just_downloaded(server: Server, workdir: str) -> None:
    # "-DELE" runs after the transfer, in the file's directory: download-then-delete.
    (server.home / workdir[1:] / "once.txt").write_bytes(b"read me once")

    run = curl(server, f"{workdir}/once.txt", "--quote", "-DELE once.txt")

    assert run.stdout == b"read me once"
    assert not (server.home / workdir[1:] / "once.txt").exists()


def test_failing_quote_command_makes_curl_fail(server: Server, workdir: str) -> None:
    run = curl(server, f"{workdir}/", "--quote", f"DELE {workdir}/missing", check=False)

    assert run.returncode == 21  # CURLE_QUOTE_ERROR
    assert "550" in run.stderr


def test_download_of_a_missing_file_fails_with_550(server: Server, workdir: str) -> None:
    run = curl(server, f"{workdir}/nothing.bin", check=False)

    assert run.returncode == 78  # CURLE_REMOTE_FILE_NOT_FOUND
    assert "< 550" in run.stderr


def test_wrong_password_fails_at_once_with_login_denied(server: Server) -> None:
    # "At once": one PASS and curl's login-denied exit, within curl's own --max-time (a server
    # that never answered would end it with 28, timed out); no duration is asserted.
    run = run_curl("--user", f"{server.user}:not the password", server.url("/"), timeout=30)

    assert run.returncode == 67, run.stderr  # CURLE_LOGIN_DENIED
    assert "< 530" in run.stderr
    assert [c for c in run.sent if c.startswith("PASS")] == ["PASS not the password"]


def test_server_log_never_shows_the_password(server: Server, workdir: str) -> None:
    (server.home / workdir[1:] / "p.txt").write_bytes(b"p")
    curl(server, f"{workdir}/p.txt")
    wrong = "guess the secret"
    curl(server, "/", "--user", f"{server.user}:{wrong}", check=False)

    log = server.log_text()

    assert "PASS <hidden>" in log
    assert server.password not in log
    assert wrong not in log


def test_fresh_download_still_works_after_all_other_tests(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    # Runs last in this module: leaked passive ports, sessions or descriptors from the tests
    # above would show here as a refused or broken transfer.
    data = payload(123_457)
    (server.home / workdir[1:] / "last.bin").write_bytes(data)

    for mode in MODES.values():
        run = curl(server, f"{workdir}/last.bin", *mode.args)
        assert run.stdout == data
    assert server.process.poll() is None
