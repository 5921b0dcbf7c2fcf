"""lftp against a real ftpsup instance: transfers, resume, listings, mirror and file commands.

Rules:
- Every lftp run fails fast: one retry, short timeouts, cmd:fail-exit, and a subprocess
  timeout on top. lftp's `cat` is not used for files that may be missing, because with
  cmd:fail-exit lftp 4.9 does not exit after a failed `cat`.
- Transfers are checked by sha256 of the bytes on both ends; the data-connection verb lftp
  used is read from its debug trace (-d), so a fallback to another mode cannot pass unseen.
- Over IPv6, lftp's active mode sends "EPRT |2|::|port|"; the server must take the
  unspecified address as the client's own and connect back to it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clients import lftp_quote
from tests.integration.lftp_runs import LFTP, MODES, lftp
from tests.integration.payloads import file_sha256, payload, sha256
from tests.integration.servers import Server

if LFTP is None:
    pytest.skip("lftp is not installed", allow_module_level=True)


BIG_SIZE = 24 * 1024 * 1024
CLEANUP_THRESHOLD = 1024 * 1024
SIZES = {"empty": 0, "small": 1000, "big": BIG_SIZE}


def on_disk(server: Server, vpath: str) -> Path:
    return server.home / vpath.lstrip("/")


@pytest.fixture(autouse=True)
def _drop_big_files(request: pytest.FixtureRequest) -> Iterator[None]:
    roots: list[Path] = []
    if "workdir" in request.fixturenames:
        roots.append(on_disk(request.getfixturevalue("server"), request.getfixturevalue("workdir")))
    if "tmp_path" in request.fixturenames:
        roots.append(request.getfixturevalue("tmp_path"))
    yield
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size > CLEANUP_THRESHOLD:
                path.unlink()


@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("mode_name", MODES)
def test_get_is_byte_exact(
    server: Server, workdir: str, tmp_path: Path, mode_name: str, size_name: str
) -> None:
    mode = MODES[mode_name]
    data = payload(SIZES[size_name])
    on_disk(server, workdir).joinpath("file.bin").write_bytes(data)
    local = tmp_path / "file.bin"

    run = lftp(
        server, f"get file.bin -o {lftp_quote(str(local))}", cwd=workdir, settings=mode.settings
    )

    assert any(c.startswith(mode.verb(server)) for c in run.sent), run.sent
    assert "RETR file.bin" in run.sent
    assert file_sha256(local) == sha256(data)


@pytest.mark.parametrize("size_name", SIZES)
@pytest.mark.parametrize("mode_name", MODES)
def test_put_is_byte_exact(
    server: Server, workdir: str, tmp_path: Path, mode_name: str, size_name: str
) -> None:
    mode = MODES[mode_name]
    data = payload(SIZES[size_name])
    local = tmp_path / "up.bin"
    local.write_bytes(data)

    run = lftp(
        server, f"put {lftp_quote(str(local))} -o up.bin", cwd=workdir, settings=mode.settings
    )

    assert any(c.startswith(mode.verb(server)) for c in run.sent), run.sent
    assert "STOR up.bin" in run.sent
    assert file_sha256(on_disk(server, workdir) / "up.bin") == sha256(data)


def test_get_continue_fetches_only_the_rest(server: Server, workdir: str, tmp_path: Path) -> None:
    data = payload(3 * 1024 * 1024 + 17)
    on_disk(server, workdir).joinpath("r.bin").write_bytes(data)
    local = tmp_path / "r.bin"
    local.write_bytes(data[:1_000_003])

    run = lftp(server, f"get -c r.bin -o {lftp_quote(str(local))}", cwd=workdir)

    assert "REST 1000003" in run.sent
    assert file_sha256(local) == sha256(data)


@pytest.mark.parametrize("verb", ["put -c", "reput"])
def test_put_continue_sends_only_the_rest(
    server: Server, workdir: str, tmp_path: Path, verb: str
) -> None:
    data = payload(2 * 1024 * 1024 + 5)
    remote = on_disk(server, workdir) / "u.bin"
    remote.write_bytes(data[:777_777])
    local = tmp_path / "u.bin"
    local.write_bytes(data)

    run = lftp(server, f"{verb} {lftp_quote(str(local))} -o u.bin", cwd=workdir)

    assert "REST 777777" in run.sent
    assert "STOR u.bin" in run.sent
    assert file_sha256(remote) == sha256(data)


def make_tree(root: Path) -> None:
    """A small tree: files (one empty), a name with spaces, a UTF-8 name and a subdirectory."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "empty").write_bytes(b"")
    (root / "b c.bin").write_bytes(payload(70_000))
    (root / "ünïcødé.txt").write_bytes("ünï\r\n".encode())
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "inner file.txt").write_bytes(b"inner\n")


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under `root` by relative path: "dir" for directories, else the sha256."""
    return {
        str(p.relative_to(root)): "dir" if p.is_dir() else file_sha256(p)
        for p in sorted(root.rglob("*"))
    }


def test_ls_lists_every_entry(server: Server, workdir: str) -> None:
    make_tree(on_disk(server, workdir))

    run = lftp(server, "ls", cwd=workdir)

    assert "LIST" in run.sent
    rows = run.stdout.decode("utf-8").splitlines()
    names = {row.split(None, 8)[8]: row[0] for row in rows}
    assert names == {"a.txt": "-", "empty": "-", "b c.bin": "-", "ünïcødé.txt": "-", "sub": "d"}


def test_cls_gives_names_and_marks_directories(server: Server, workdir: str) -> None:
    make_tree(on_disk(server, workdir))

    run = lftp(server, "cls -1", cwd=workdir)

    assert set(run.stdout.decode("utf-8").splitlines()) == {
        "a.txt", "empty", "b c.bin", "ünïcødé.txt", "sub/",
    }  # fmt: skip


def test_find_walks_the_whole_tree(server: Server, workdir: str) -> None:
    make_tree(on_disk(server, workdir))

    run = lftp(server, "find", cwd=workdir)

    assert set(run.stdout.decode("utf-8").splitlines()) == {
        "./", "./a.txt", "./empty", "./b c.bin", "./ünïcødé.txt", "./sub/",
        "./sub/inner file.txt",
    }  # fmt: skip


def test_mirror_copies_the_tree_down_byte_exact(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    source = on_disk(server, workdir) / "tree"
    make_tree(source)
    target = tmp_path / "copy"

    lftp(server, f"mirror {lftp_quote(workdir + '/tree')} {lftp_quote(str(target))}")

    assert tree_digest(target) == tree_digest(source)


def test_mirror_downloads_a_symlinked_file_as_the_file(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    source = on_disk(server, workdir) / "linked"
    source.mkdir()
    (source / "real.txt").write_bytes(b"through the link\n")
    (source / "alias.txt").symlink_to("real.txt")
    target = tmp_path / "copy"

    lftp(server, f"mirror {lftp_quote(workdir + '/linked')} {lftp_quote(str(target))}")

    # MLSD describes the link as the file it points to, so mirror fetches it (an entry typed
    # OS.unix=symlink is skipped without a word).
    assert not (target / "alias.txt").is_symlink()
    assert (target / "alias.txt").read_bytes() == b"through the link\n"


def test_mirror_reverse_copies_the_tree_up_byte_exact(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    source = tmp_path / "tree"
    make_tree(source)

    run = lftp(server, f"mirror -R {lftp_quote(str(source))} {lftp_quote(workdir + '/up')}")

    assert any(c.startswith("MKD ") for c in run.sent)
    assert tree_digest(on_disk(server, workdir) / "up") == tree_digest(source)


def test_mirror_of_an_unchanged_tree_transfers_nothing(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    source = on_disk(server, workdir) / "tree"
    make_tree(source)
    target = tmp_path / "copy"
    lftp(server, f"mirror {lftp_quote(workdir + '/tree')} {lftp_quote(str(target))}")

    run = lftp(server, f"mirror {lftp_quote(workdir + '/tree')} {lftp_quote(str(target))}")

    # Sizes and times from the listing match, so lftp fetches no file a second time.
    assert not [c for c in run.sent if c.startswith("RETR")]
    assert tree_digest(target) == tree_digest(source)


def test_mkdir_makes_a_directory(server: Server, workdir: str) -> None:
    lftp(server, 'mkdir "new dir"', cwd=workdir)

    assert (on_disk(server, workdir) / "new dir").is_dir()


def test_mkdir_p_makes_the_missing_parents(server: Server, workdir: str) -> None:
    lftp(server, "mkdir -p a/b/c", cwd=workdir)

    assert (on_disk(server, workdir) / "a" / "b" / "c").is_dir()


def test_rm_removes_a_file(server: Server, workdir: str) -> None:
    (on_disk(server, workdir) / "y").write_bytes(b"doomed")

    run = lftp(server, "rm y", cwd=workdir)

    assert "DELE y" in run.sent
    assert not (on_disk(server, workdir) / "y").exists()


def test_rm_of_a_missing_file_fails_with_550(server: Server, workdir: str) -> None:
    run = lftp(server, "rm missing", cwd=workdir, check=False)

    assert run.returncode == 1
    assert "550" in run.stderr


def test_mv_renames_a_file(server: Server, workdir: str) -> None:
    home = on_disk(server, workdir)
    (home / "a").write_bytes(b"contents")

    run = lftp(server, 'mv a "b ü"', cwd=workdir)

    assert run.sent[-3:-1] == ("RNFR a", "RNTO b ü")
    assert not (home / "a").exists()
    assert (home / "b ü").read_bytes() == b"contents"


def test_chmod_sets_the_mode_on_disk(server: Server, workdir: str) -> None:
    target = on_disk(server, workdir) / "f"
    target.write_bytes(b"private")
    os.chmod(target, 0o644)

    run = lftp(server, "chmod 600 f", cwd=workdir)

    assert "SITE CHMOD 600 f" in run.sent
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_rmdir_removes_an_empty_directory(server: Server, workdir: str) -> None:
    (on_disk(server, workdir) / "gone").mkdir()

    run = lftp(server, "rmdir gone", cwd=workdir)

    assert "RMD gone" in run.sent
    assert not (on_disk(server, workdir) / "gone").exists()


def test_rmdir_of_a_non_empty_directory_fails(server: Server, workdir: str) -> None:
    full = on_disk(server, workdir) / "full"
    full.mkdir()
    (full / "x").write_bytes(b"x")

    run = lftp(server, "rmdir full", cwd=workdir, check=False)

    assert run.returncode == 1
    assert "550" in run.stderr
    assert (full / "x").exists()


def test_wrong_password_fails_at_once_with_login_failed(server: Server) -> None:
    # "At once": lftp gives up after one try (a 530, not a reply it would retry after), within
    # its own timeouts; no duration is asserted.
    run = lftp(server, "ls", password="not the password", check=False)

    assert run.returncode == 1
    assert "Login failed: 530" in run.stderr
    assert "<--- 530" in run.stderr
    assert len([c for c in run.sent if c.startswith("PASS")]) == 1, run.sent


def test_server_log_never_shows_the_password(server: Server, workdir: str) -> None:
    wrong = "guess the secret"
    lftp(server, "ls", cwd=workdir)
    lftp(server, "ls", password=wrong, check=False)

    log = server.log_text()

    assert "PASS <hidden>" in log
    assert server.password not in log
    assert wrong not in log


def test_fresh_get_still_works_after_all_other_tests(
    server: Server, workdir: str, tmp_path: Path
) -> None:
    # Runs last in this module: leaked passive ports, sessions or descriptors from the tests
    # above would show here as a refused or broken transfer.
    data = payload(123_457)
    on_disk(server, workdir).joinpath("last.bin").write_bytes(data)

    for name, mode in MODES.items():
        local = tmp_path / f"{name}.bin"
        lftp(
            server, f"get last.bin -o {lftp_quote(str(local))}", cwd=workdir, settings=mode.settings
        )
        assert file_sha256(local) == sha256(data)
    assert server.process.poll() is None
