"""Directories opened as root before the drop, so the account needs no way to them by name.

Theory of operation: after the drop an instance still reads the user store (whenever it
changes), the certificate and key (every new TLS session), and writes its lease files and
its logs. Those live in the configuration directory and beside it, and that directory may sit
where the account cannot pass by name: a checkout in /root (mode 0700). The kernel checks
search permission on every directory of a path it resolves, but a lookup relative to an open
directory descriptor starts at that directory: the ones above it are never passed. So before
the drop, `anchor` opens (O_PATH, as root) each such directory whose path the account could
not follow, and the instance goes on from that descriptor:

- the user store through `UserDirectory`'s `dir_fd` (stat and open relative to it, so an
  atomic replacement of the file is seen and the messages keep the real path);
- the certificate, the key, the lease directory and the log files, which stdlib APIs (ssl,
  logging) open by path, through /proc/self/fd/<fd>/<name>: the kernel resolves that link to
  the open directory itself, without walking the path it was opened by.

The account still needs what vsftpd's would: read permission on the files it reads, write
permission on the directories it writes in, and search (x) permission on each anchored
directory itself (`ftpsup setup` grants that for the store's and the key's directories;
`accounts.reach_problems` checks exactly this). A directory whose parents the account can pass
by name is left as it is, so a system install (/etc/ftpsup, /run/ftpsup) logs its ordinary
paths.

The descriptors stay open for the life of the process: renaming an anchored directory does
not move the instance with it (a restart does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from ftpsup.config.schema import InstanceConfig
from ftpsup.users.accounts import Account, blocked_for, reached_after_drop

# InstanceConfig fields reached through /proc/self/fd after the drop, by reach_problems key.
_FILE_FIELDS = ("rsa_cert_file", "rsa_private_key_file", "ca_certs_file")
_LOG_FIELDS = ("vsftpd_log_file", "xferlog_file")


@attrs.frozen
class Anchored:
    """The configuration to serve with after the drop, and the user store's directory."""

    config: InstanceConfig
    # The store's directory, opened before the drop; None when the account reaches it by name.
    store_dir_fd: int | None = None


def fd_path(fd: int) -> Path:
    """A path that names the directory open on `fd`, for APIs that only take paths."""
    return Path(f"/proc/self/fd/{fd}")


def anchor(config: InstanceConfig, account: Account) -> Anchored:
    """Open, as root, each directory the instance uses that `account` cannot reach by name.

    Raises:
        OSError: such a directory exists but cannot be opened.
    """
    opened: dict[Path, int] = {}

    def open_dir(directory: Path) -> int:
        if directory not in opened:
            opened[directory] = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return opened[directory]

    changes: dict[str, Any] = {}
    store_dir_fd = None
    for key, path, directory, _is_file in reached_after_drop(config):
        # Only the directories above it matter: the kernel still checks the directory itself
        # and what is under it, fd or not.
        if blocked_for(directory.parent, account, need=0o1) is None:
            continue
        if not directory.is_dir():
            continue  # nothing to open; reach_problems has reported it
        fd = open_dir(directory)
        if key == "user_db_file":
            store_dir_fd = fd
        elif key == "state_dir":
            changes[key] = fd_path(fd)
        elif key in _FILE_FIELDS:
            changes[key] = fd_path(fd) / path.name
        elif key in _LOG_FIELDS:
            # The log key's path is the file's directory; the file keeps its name.
            changes[key] = fd_path(fd) / getattr(config, key).name
    return Anchored(attrs.evolve(config, **changes), store_dir_fd)
