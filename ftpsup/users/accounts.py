"""Which account an instance runs as, and what that account must be able to reach.

Theory of operation: an instance process always starts as whoever started ftpsup. When that is
root, the instance loads everything it needs (modules, log files, its listening socket), then
drops to `nopriv_user` for good (ftpsup/server/privileges.py), so nothing it reads from a
client ever meets a root process. Root is never the default: only `run_as_root = true` keeps
an instance root, and that is logged as a warning at every start. Started by another user,
the instance simply stays that user (only root can switch).

After the drop the instance still re-reads the user store (on change), reads the TLS
certificate and key (for every new TLS session), writes passive-port lease files in
`<state_dir>/ports`, and reopens its log files (logrotate). Each of those is reached from its
own directory on: a directory the account could not reach by name (a checkout in /root, mode
0700) is opened as root before the drop, and the instance goes on from that descriptor
(ftpsup/server/anchors.py). So only the directory itself and what is under it must let the
account in, never the directories above it. `prepare_paths`, run as root before each start,
hands the lease and log directories to the account and reports anything else the account
could not reach, so a problem shows at start, not at the first login.

Rules:
1. A missing account, or one with uid 0, is a problem that stops the start; the message says
   how to fix it (`ftpsup setup`, or `run_as_root = true`).
2. `prepare_paths` (every start) changes only what the instance writes: the lease and log
   directories. What belongs to the admin (the store, the certificate and key, the homes) is
   shared with the account only by commands the admin runs as root (`grant_read`, used by
   `ftpsup setup`, `ftpsup cert` and `ftpsup user`).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import attrs

from ftpsup.config.cross import missing_account_problem
from ftpsup.config.load import shared_setting
from ftpsup.config.schema import InstanceConfig
from ftpsup.errors import SettingProblem


@attrs.frozen
class Account:
    """The unprivileged account an instance process runs as."""

    name: str
    uid: int
    gid: int


class AccountError(Exception):
    """nopriv_user cannot be used; `problem` says why (the message is its "key: problem" line)."""

    def __init__(self, problem: SettingProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def instance_account(config: InstanceConfig) -> Account | None:
    """The account the instance drops to; None when it keeps the account it was started as.

    None when this process is not root (only root can switch), or when the instance sets
    run_as_root.

    Raises:
        AccountError: nopriv_user names no account, or names root (uid 0).
    """
    if os.geteuid() != 0 or config.run_as_root:
        return None
    try:
        entry = pwd.getpwnam(config.nopriv_user)
    except KeyError:
        missing = missing_account_problem(config.nopriv_user)
        raise AccountError(SettingProblem(("nopriv_user",), missing)) from None
    if entry.pw_uid == 0:
        text = (
            f"{config.nopriv_user} has uid 0; name an unprivileged account, "
            f"or set run_as_root = true to run the instances as root on purpose"
        )
        raise AccountError(SettingProblem(("nopriv_user",), text))
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _bits_for(st: os.stat_result, account: Account) -> int:
    shift = 6 if st.st_uid == account.uid else 3 if st.st_gid == account.gid else 0
    return (st.st_mode >> shift) & 0o7


def blocked_for(
    path: Path, account: Account, *, need: int, below: Path | None = None
) -> Path | None:
    """The first component of `path` that `account` cannot pass, or None.

    Every directory on the way needs search (x) permission; `path` itself needs `need`
    (an rwx mask: 0o4 read, 0o3 write and search...). A missing path is not blocked. With
    `below`, a directory the instance opens before the drop, the walk starts there: the
    directories above it are never passed by name.
    """
    target = Path(os.path.abspath(path))
    steps = [*reversed(target.parents), target]
    if below is not None:
        top = Path(os.path.abspath(below))
        steps = [step for step in steps if step == top or top in step.parents]
    for step in steps:
        try:
            st = step.stat()
        except FileNotFoundError:
            return None
        needed = need if step == target else 0o1
        if _bits_for(st, account) & needed != needed:
            return step
    return None


def _own(path: Path, account: Account | None) -> None:
    if account is not None:
        os.chown(path, account.uid, account.gid, follow_symlinks=False)


def _log_files(config: InstanceConfig) -> list[tuple[str, Path]]:
    files = [("vsftpd_log_file", config.vsftpd_log_file)]
    if config.xferlog_enable:
        files.append(("xferlog_file", config.xferlog_file))
    return files


def prepare_paths(config: InstanceConfig, account: Account | None) -> list[SettingProblem]:
    """Create what the instance writes to and give it to `account`; returns the problems.

    The lease directory, the instance's log directory (`<log_dir>/<name>`, or the directory
    of a log file set elsewhere) and existing log and lease files are made the account's, so
    an instance that once ran as root still runs after nopriv_user is set. What the account
    only reads (the user store, the certificate and key) is checked, never changed.
    """
    problems: list[SettingProblem] = []
    lease_dir = config.state_dir / "ports"
    targets: list[tuple[str, Path, int]] = [("state_dir", lease_dir, 0o700)]
    own_log_dir = config.log_dir / config.name
    for key, file in _log_files(config):
        targets.append((key, file.parent, 0o750))
    for key, directory, mode in targets:
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=mode)
            if directory in (lease_dir, own_log_dir):
                _own(directory, account)
        except OSError as exc:
            problems.append(SettingProblem((key,), f"cannot create {directory}: {exc.strerror}"))
    if account is None:
        return problems
    try:
        for lock in lease_dir.glob("*.lock"):
            _own(lock, account)
        for _key, file in _log_files(config):
            if file.exists():
                _own(file, account)
            elif file.parent != own_log_dir:
                # A shared directory stays the admin's: give the instance its file, not the dir.
                file.touch(mode=0o640)
                _own(file, account)
    except OSError as exc:
        text = f"cannot hand files to {account.name}: {exc}"
        problems.append(SettingProblem(("nopriv_user",), text))
    return problems + reach_problems(config, account)


def reached_after_drop(config: InstanceConfig) -> list[tuple[str, Path, Path, bool]]:
    """What the instance uses after the drop: (key, path, anchor directory, read-only file).

    A read-only file is read (the store, the certificate and key); anything else is a directory
    the instance writes in (the leases, the logs).
    """
    used = [
        ("state_dir", config.state_dir / "ports", config.state_dir, False),
        ("user_db_file", config.user_db_file, config.user_db_file.parent, True),
    ]
    used += [(key, file.parent, file.parent, False) for key, file in _log_files(config)]
    if config.ssl_enable:
        # Read for every new TLS session, so a renewed certificate needs no restart.
        for key, file in (
            ("rsa_cert_file", config.rsa_cert_file),
            ("rsa_private_key_file", config.rsa_private_key_file),
            ("ca_certs_file", config.ca_certs_file),
        ):
            if file is not None and (
                key != "ca_certs_file" or config.validate_cert or config.require_cert
            ):
                used.append((key, file, file.parent, True))
    return used


def reach_problems(config: InstanceConfig, account: Account) -> list[SettingProblem]:
    """What `account` could not reach after the drop.

    Each path is checked from the directory the instance opens before the drop (its anchor,
    ftpsup/server/anchors.py) on: the file's own directory, or state_dir for the leases.
    """
    needs = [
        (key, path, 0o4 if is_file else 0o3, anchor)
        for key, path, anchor, is_file in reached_after_drop(config)
    ]
    problems: list[SettingProblem] = []
    for key, path, need, anchor in needs:
        try:
            blocked = blocked_for(path, account, need=need, below=anchor)
        except OSError as exc:
            problems.append(SettingProblem((key,), f"cannot check {path}: {exc.strerror}"))
            continue
        if blocked is None:
            continue
        what = "read" if need == 0o4 else "write to"
        # setup shares a file the instance reads, and lets the account search its directory.
        fix = "run `ftpsup setup`" if need == 0o4 and blocked in (path, anchor) else "move it"
        text = (
            f"nopriv_user {account.name} cannot {what} {path} (no access to {blocked}): {fix}, "
            "or see docs/supervisor.md"
        )
        problems.append(SettingProblem((key,), text))
    return problems


def shared_account(config_dir: Path) -> Account | None:
    """The account the instances of `config_dir` drop to, for commands run as root.

    None when this process is not root, when _shared.toml sets run_as_root, or when the
    account does not exist (yet): files are then left as they are.
    """
    if os.geteuid() != 0 or shared_setting(config_dir, "run_as_root") is True:
        return None
    name = shared_setting(config_dir, "nopriv_user")
    try:
        entry = pwd.getpwnam(str(name))
    except KeyError:
        return None
    return None if entry.pw_uid == 0 else Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def grant_read(path: Path, account: Account) -> bool:
    """Make `path` readable by `account`'s group and nobody else (0640, owner kept).

    Returns whether anything changed.
    """
    st = path.stat()
    mode = (st.st_mode & 0o700) | 0o040
    if st.st_gid == account.gid and st.st_mode & 0o777 == mode:
        return False
    os.chown(path, -1, account.gid)
    os.chmod(path, mode)
    return True


def grant_search(directory: Path, account: Account) -> bool:
    """Let `account`'s group search `directory` (g+x, group the account's, owner kept).

    Search only, not listing: the instance opens the files it knows by name. Returns whether
    anything changed (nothing when the account can already search it).
    """
    st = directory.stat()
    if _bits_for(st, account) & 0o1:
        return False
    os.chown(directory, -1, account.gid)
    os.chmod(directory, (st.st_mode & 0o7707) | 0o010)
    return True
