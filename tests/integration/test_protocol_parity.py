"""Replies checked against what vsftpd and pyftpdlib answer to the same commands.

Rules:
- Each test names the client-visible rule it holds: MLSx perm letters are exactly the verbs
  the session may run; SIZE in TYPE A is refused; a transfer cut by a stop still gets its
  xferlog line. SMNT's 502 and FEAT per connection are tested on the state machine
  (tests/proto/session).
- No sleeping: the stop test waits on server-side state (bytes arriving, the process exit,
  the xferlog line), each wait bounded.
"""

from __future__ import annotations

import ftplib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.raw_ftp import open_data
from tests.integration.servers import Server, anonymous_login, wait_until
from tests.integration.supervisors import STOPWAITSECS, alive, own_supervisor

ServerFactory = Callable[..., Server]
TIMEOUT = 20


def _anon_server(server_factory: ServerFactory, tmp_path: Path, **settings: object) -> Server:
    root = tmp_path / "anon"
    (root / "sub").mkdir(parents=True)
    (root / "pub.txt").write_bytes(b"public")
    return server_factory("127.0.0.1", anonymous_enable=True, anon_root=str(root), **settings)


# -- MLSD/MLST perm -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "file_perm", "dir_perm"),
    [
        # STOR, STOU and APPE (Session.write_allowed).
        ({"anon_upload_enable": True}, "arw", "cel"),
        ({"anon_mkdir_write_enable": True}, "r", "elm"),
        # DELE, RMD, RNFR/RNTO (and MFMT, SITE CHMOD: no perm letter).
        ({"anon_other_write_enable": True}, "dfr", "deflp"),
        ({"anon_upload_enable": True, "write_enable": False}, "r", "el"),
    ],
    ids=["upload", "mkdir", "other", "write-off"],
)
def test_anonymous_perm_fact_is_exactly_what_the_session_may_do(
    server_factory: ServerFactory,
    tmp_path: Path,
    settings: dict[str, object],
    file_perm: str,
    dir_perm: str,
) -> None:
    srv = _anon_server(server_factory, tmp_path, **settings)
    with anonymous_login(srv, timeout=TIMEOUT) as ftp:
        listed = dict(ftp.mlsd("/", facts=["type", "perm"]))
        mlst_file = ftp.sendcmd("MLST /pub.txt").splitlines()[1]
        mlst_dir = ftp.sendcmd("MLST /sub").splitlines()[1]
    assert listed["pub.txt"] == {"type": "file", "perm": file_perm}
    assert listed["sub"] == {"type": "dir", "perm": dir_perm}
    assert f"perm={file_perm};" in mlst_file
    assert f"perm={dir_perm};" in mlst_dir


def test_mlsd_and_mlst_agree_on_a_symlinked_file(server: Server, workdir: str) -> None:
    base = server.home / workdir.lstrip("/")
    (base / "real.txt").write_bytes(b"12345")
    (base / "alias.txt").symlink_to("real.txt")
    with server.connect(timeout=TIMEOUT) as ftp:
        listed = dict(ftp.mlsd(workdir, facts=["type", "size"]))
        mlst = ftp.sendcmd(f"MLST {workdir}/alias.txt").splitlines()[1]
    assert listed["alias.txt"] == {"type": "file", "size": "5"}
    assert mlst.startswith(" type=file;size=5;")


# -- SIZE ------------------------------------------------------------------------------------


def test_size_is_refused_in_type_a_and_exact_in_type_i(server: Server, workdir: str) -> None:
    # Two LF line ends: 10 bytes on disk, 12 as TYPE A sends them.
    (server.home / workdir.lstrip("/") / "text.txt").write_bytes(b"abcd\nefg\n")
    with server.connect(timeout=TIMEOUT) as ftp:
        ftp.voidcmd("TYPE A")
        with pytest.raises(ftplib.error_perm, match=r"^550 SIZE not allowed in ASCII mode"):
            ftp.sendcmd(f"SIZE {workdir}/text.txt")
        ftp.voidcmd("TYPE I")
        assert ftp.sendcmd(f"SIZE {workdir}/text.txt") == "213 9"


# -- a transfer cut by `ftpsup stop` ---------------------------------------------------------


def test_transfer_cut_by_stop_gets_an_incomplete_xferlog_line() -> None:
    with own_supervisor(xferlog_enable=True, xferlog_std_format=True) as sup:
        big = sup.home / "huge.bin"
        big.parent.mkdir(parents=True, exist_ok=True)
        with big.open("wb") as f:
            f.truncate(1 << 30)  # sparse: far more than any socket buffer holds
        result = sup.ftpsup("start", "ipv4")
        assert result.returncode == 0, result.stdout + result.stderr
        pid = sup.pid("ipv4")
        xferlog = sup.base / "log" / "ipv4" / "xferlog"
        ftp = sup.connect("ipv4")
        try:
            conn, _ = open_data(ftp, "EPSV", "RETR huge.bin", rcvbuf=4096, timeout=TIMEOUT)
            with conn:
                # Bytes arriving prove the copy runs; the client then stops reading, so the
                # transfer is still running when the drain time is over.
                assert conn.recv(1024)
                result = sup.ftpsup("stop", "ipv4")
                assert result.returncode == 0, result.stdout + result.stderr
                wait_until(
                    lambda: not alive(pid), "the instance to exit", timeout=STOPWAITSECS + 20
                )
        finally:
            ftp.close()
        lines = xferlog.read_text().splitlines() if xferlog.exists() else []
        assert len(lines) == 1, lines
        fields = lines[0].split()
        # ... filename transfer-type special-action direction access-mode user service
        # auth-method auth-user-id completion-status (wu-ftpd xferlog(5)).
        assert fields[-1] == "i"
        assert fields[-10].endswith("/huge.bin")
        assert fields[-7] == "o"
