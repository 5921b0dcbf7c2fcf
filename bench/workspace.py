"""The benchmark's scratch space: served files, certificate, and the throwaway system account.

Rules:
- Everything lives in one temporary directory that is removed on exit, whatever happened.
- vsftpd logs in local system users through PAM, and Pure-FTPd's virtual user needs a uid to
  run as, so when the harness runs as root it creates the system user `ftpbench` (no home,
  no login shell, a random password) and a PAM service file `/etc/pam.d/ftpsup-bench`, and
  removes both at the end. An `ftpbench` account the harness did not create (its GECOS field
  differs) is never touched: the harness stops with a message instead.
- Served files are owned by `ftpbench` when it exists, so every server's sessions can read
  and write them whichever uid they run as.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs

from ftpsup.tls.certs import write_self_signed

HOST = "127.0.0.1"
BENCH_USER = "ftpbench"
BENCH_GECOS = "ftpsup bench throwaway account"
PAM_SERVICE = "ftpsup-bench"
PAM_FILE = Path("/etc/pam.d") / PAM_SERVICE
# pam_unix alone: the password check (the costly part) is the stock one, and the account
# needs no login shell, unlike the stock /etc/pam.d/vsftpd which also runs pam_shells.
PAM_TEXT = (
    "# ftpsup bench: temporary PAM service for vsftpd, removed when the run ends\n"
    "auth required pam_unix.so\n"
    "account required pam_unix.so\n"
)
SMALL_NAME = "64k.bin"
SMALL_SIZE = 65536
BIG_NAME = "big.bin"
_BLOCK = 4 * 1024 * 1024


class SetupError(Exception):
    """The workspace or the throwaway account could not be made."""


@attrs.frozen
class SystemUser:
    """The throwaway account; `crypt_hash` is its /etc/shadow hash."""

    name: str
    uid: int
    gid: int
    crypt_hash: str


@attrs.frozen
class Workspace:
    """Paths and credentials every server of one benchmark run shares."""

    base: Path
    root: Path
    cert: Path
    key: Path
    big_size: int
    password: str
    pasv_min: int
    pasv_max: int
    system_user: SystemUser | None
    # Run-time state (ftpsup's state_dir) on tmpfs, as a system install's /run/ftpsup: on
    # a disk file system under write load, creating a port's lease file cost ~0.7 ms of CPU.
    run_dir: Path

    @property
    def big(self) -> Path:
        """The large file of rows a) to c) and f)."""
        return self.root / BIG_NAME


def _run(argv: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, text=True, capture_output=True, timeout=60)
    if done.returncode != 0:
        raise SetupError(f"{' '.join(argv[:2])}: {done.stderr.strip() or done.returncode}")


def _shadow_hash(name: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields[1]
    raise SetupError(f"no /etc/shadow entry for {name}")


def _make_user(home: Path, password: str) -> SystemUser:
    try:
        entry = pwd.getpwnam(BENCH_USER)
    except KeyError:
        _run(
            ["useradd", "--system", "--no-create-home", "--home-dir", str(home),
             "--shell", "/usr/sbin/nologin", "--comment", BENCH_GECOS, BENCH_USER]
        )  # fmt: skip
    else:
        if entry.pw_gecos != BENCH_GECOS:
            raise SetupError(
                f"a user {BENCH_USER!r} exists that the benchmark did not create; "
                "remove it, or run without vsftpd and pure-ftpd (--only ftpsup,pyftpdlib)"
            )
        # Left over from an interrupted run: reuse it with this run's home.
        _run(["usermod", "--home", str(home), BENCH_USER])
    # chpasswd hashes with the system's default method (yescrypt on Debian 12).
    _run(["chpasswd"], stdin=f"{BENCH_USER}:{password}\n")
    entry = pwd.getpwnam(BENCH_USER)
    PAM_FILE.write_text(PAM_TEXT)
    return SystemUser(BENCH_USER, entry.pw_uid, entry.pw_gid, _shadow_hash(BENCH_USER))


def remove_user() -> list[str]:
    """Delete the throwaway account and PAM file if they are ours; returns problems."""
    problems: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        if PAM_FILE.read_text() == PAM_TEXT:
            PAM_FILE.unlink()
    try:
        entry = pwd.getpwnam(BENCH_USER)
    except KeyError:
        return problems
    if entry.pw_gecos == BENCH_GECOS:
        try:
            _run(["userdel", BENCH_USER])
        except (SetupError, subprocess.TimeoutExpired) as exc:
            problems.append(f"could not delete user {BENCH_USER}: {exc}")
    return problems


def _write_big(path: Path, size: int) -> None:
    block = os.urandom(_BLOCK)
    with path.open("wb") as out:
        left = size
        while left > 0:
            left -= out.write(block[: min(left, _BLOCK)])


@contextlib.contextmanager
def workspace(
    big_size: int, pasv_min: int, pasv_max: int, *, system_user: bool
) -> Iterator[Workspace]:
    """Create the served tree, a self-signed certificate and (as root) the system user.

    Problems met while removing the account are printed to stderr; they never mask an error
    raised inside the block.
    """
    base = Path(tempfile.mkdtemp(prefix="ftpsup-bench-"))
    shm = Path("/dev/shm")
    run_dir = Path(tempfile.mkdtemp(prefix="ftpsup-bench-run-", dir=shm if shm.is_dir() else base))
    password = secrets.token_urlsafe(18)
    made_user = False
    try:
        # Session processes that dropped to ftpbench must be able to reach the served root.
        base.chmod(0o711)
        root = base / "root"
        root.mkdir(mode=0o755)
        (root / SMALL_NAME).write_bytes(os.urandom(SMALL_SIZE))
        _write_big(root / BIG_NAME, big_size)
        cert, key = base / "cert.pem", base / "key.pem"
        write_self_signed(cert, key, [HOST])
        user: SystemUser | None = None
        if system_user and os.geteuid() == 0:
            made_user = True
            user = _make_user(root, password)
            for path in (root, *root.iterdir()):
                os.chown(path, user.uid, user.gid)
        yield Workspace(
            base, root, cert, key, big_size, password, pasv_min, pasv_max, user, run_dir
        )
    finally:
        if made_user:
            for problem in remove_user():
                print(f"bench: {problem}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
