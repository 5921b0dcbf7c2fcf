"""`ftpsup setup`: the one root step that readies a host for instances that drop root.

Theory of operation: an instance started as root becomes `nopriv_user` (default `ftpsup`)
once it has loaded, and from then on reads the user store and the TLS files, and writes in the
users' homes, as that account. `setup` makes that possible, for every account the
configuration directory names (run_as_root instances need none):

1. the account exists: a system account with its own group, no home directory and no login
   shell (`useradd --system --user-group`), created when missing;
2. the user store exists (an empty one is written when missing) and, like the certificate and
   the key when they exist, is readable by the account's group and nobody else (0640, owner
   kept); `ftpsup user` keeps that mode when it rewrites the store. The directory each of
   those files is in gets group search (g+x, group the account's) when the account lacks it,
   and nothing more: the directories above it are never touched, since the instance opens
   that directory before the drop (ftpsup/server/anchors.py), so a configuration directory
   in /root (mode 0700) stays where it is and /root stays closed;
3. a read-write user's home that is empty and belongs to root (as `ftpsup user add` makes it)
   is given to the account; any other home, file or directory the account cannot use is
   reported, never changed.

Rules: does nothing but say so when not root (the instances then run as the user who starts
them); idempotent (a second run changes nothing and says so); exit status 0 when
everything is ready, 1 when something remains (printed), 2 for a broken configuration.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from ftpsup.config.load import instance_paths, load_instance
from ftpsup.config.schema import InstanceConfig
from ftpsup.errors import ConfigError, UserStoreError
from ftpsup.users import accounts
from ftpsup.users.store import load_users, save_users

NOLOGIN_SHELLS = (Path("/usr/sbin/nologin"), Path("/sbin/nologin"), Path("/bin/false"))


def _say(message: str) -> None:
    print(f"ftpsup: {message}", file=sys.stderr)


def _create_account(name: str) -> None:
    """Create the system account `name`.

    Raises:
        OSError: useradd is missing or failed (the message carries its output).
    """
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    shell = next((s for s in NOLOGIN_SHELLS if s.exists()), NOLOGIN_SHELLS[0])
    argv = [useradd, "--system", "--user-group", "--no-create-home"]
    argv += ["--home-dir", "/nonexistent", "--shell", str(shell), "--comment", "ftpsup", name]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise OSError(f"cannot run {useradd}: {exc}") from None
    if result.returncode != 0:
        raise OSError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def _account(name: str) -> accounts.Account:
    """The account `name`, created when missing.

    Raises:
        OSError: it could not be created, or it is root.
    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _create_account(name)
        entry = pwd.getpwnam(name)
        _say(f"created system account {name} (uid {entry.pw_uid}, group {entry.pw_gid})")
    if entry.pw_uid == 0:
        raise OSError(f"nopriv_user {name} has uid 0; name an unprivileged account")
    return accounts.Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _readable_files(configs: list[InstanceConfig]) -> list[Path]:
    files: list[Path] = []
    for config in configs:
        files.append(config.user_db_file)
        if config.ssl_enable:
            files += [config.rsa_cert_file, config.rsa_private_key_file]
    return list(dict.fromkeys(files))


def _hand_over_homes(store: Path, account: accounts.Account) -> list[str]:
    problems = []
    for user in load_users(store).values():
        home = user.home
        if not user.may_write or not home.is_dir():
            continue
        if accounts.blocked_for(home, account, need=0o3) is None:
            continue
        st = home.stat()
        if st.st_uid == 0 and not any(home.iterdir()):
            os.chown(home, account.uid, account.gid)
            _say(f"gave {user.name}'s empty home {home} to {account.name}")
        else:
            problems.append(
                f"{store}: user {user.name}: {account.name} cannot write to the home {home}; "
                f"give it to {account.name} (chown -R {account.name}: {home})"
            )
    return problems


def _set_up(name: str, configs: list[InstanceConfig]) -> list[str]:
    account = _account(name)
    problems: list[str] = []
    for path in _readable_files(configs):
        if path in (c.user_db_file for c in configs) and not path.exists():
            save_users(path, {})
            _say(f"wrote an empty user store {path}")
        if path.exists() and accounts.grant_read(path, account):
            _say(f"{path} is now readable by group {account.name} (mode 0640)")
        # The instance opens this directory before the drop and the file from it after
        # (ftpsup/server/anchors.py): the directory itself must let the account search it.
        if path.exists() and accounts.grant_search(path.parent, account):
            _say(f"{path.parent} is now searchable by group {account.name} (g+x)")
    for store in dict.fromkeys(c.user_db_file for c in configs):
        problems += _hand_over_homes(store, account)
    for config in configs:
        problems += [f"{config.source}: {p}" for p in accounts.reach_problems(config, account)]
    return problems


def run(config_dir: Path) -> int:
    """Carry out `ftpsup setup` for `config_dir`; returns the exit status."""
    if os.geteuid() != 0:
        # Only root switches accounts: the instances will run as this user, who needs none.
        _say(f"not root: the instances will run as uid {os.geteuid()}; nothing to set up")
        return 0
    configs: list[InstanceConfig] = []
    broken = False
    for path in instance_paths(config_dir):
        try:
            configs.append(load_instance(path))
        except ConfigError as exc:
            broken = True
            for problem in exc.problems:
                _say(str(problem))
    if broken or not configs:
        if not configs:
            _say(f"no instance files in {config_dir}")
        return 2
    by_account: dict[str, list[InstanceConfig]] = {}
    for config in configs:
        if config.run_as_root:
            _say(f"{config.source}: run_as_root = true: this instance needs no account")
        else:
            by_account.setdefault(config.nopriv_user, []).append(config)
    problems: list[str] = []
    for name, group in by_account.items():
        try:
            problems += _set_up(name, group)
        except (OSError, UserStoreError) as exc:
            problems.append(f"nopriv_user {name}: {exc}")
    for line in dict.fromkeys(problems):
        _say(line)
    if problems:
        return 1
    _say(f"ready: the instances run as {', '.join(by_account) or 'root'}")
    return 0
