"""Checks across the instances of a directory, and against this host.

Theory of operation: `listen_clashes` and `range_clashes` compare instances that loaded (two
that would bind one address and port; passive ranges that overlap without being the same; one
lease directory with two owners), `host_problems` what this host and this process's privileges
make impossible. Keys that already have a problem of their own are skipped, so one mistake is
one problem. Called by config.check.check_paths.

Rules: read-only (files, file permissions, account names and this process's privileges); no
sockets, no DNS lookups, no directories created.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import stat
from collections.abc import Iterable
from pathlib import Path

from ftpsup.config.load import Loaded
from ftpsup.config.schema import ROOT_ACCOUNT, SHARED_FILE, InstanceConfig, show
from ftpsup.errors import ConfigProblem

# Linux: CAP_NET_BIND_SERVICE, bit 10 of the capability sets in /proc/self/status.
_CAP_NET_BIND_SERVICE = 10


def listen_clashes(loaded: Iterable[Loaded]) -> list[ConfigProblem]:
    """Instances of one directory that would bind the same address and port."""
    seen: list[InstanceConfig] = []
    problems: list[ConfigProblem] = []
    usable = [
        (item.config, item)
        for item in loaded
        if item.config is not None and not item.bad_keys & {"listen_address", "listen_port"}
    ]
    for config, item in sorted(usable, key=lambda pair: (str(pair[0].source), pair[0].name)):
        address = ipaddress.ip_address(config.listen_address)
        for other in seen:
            other_address = ipaddress.ip_address(other.listen_address)
            if (
                other.config_dir != config.config_dir
                or other.listen_port != config.listen_port
                or other_address.version != address.version
            ):
                continue
            where = f"{config.listen_address} port {config.listen_port}"
            if other_address == address:
                problem = f'{where} is also used by instance "{other.name}"'
            elif address.is_unspecified or other_address.is_unspecified:
                # Linux refuses a wildcard and a specific bind on one port, even with SO_REUSEADDR.
                problem = f'{where} overlaps instance "{other.name}" on {other.listen_address}'
            else:
                continue
            file = item.origin.get("listen_address", item.file)
            problems.append(ConfigProblem(file, "listen_address", problem))
            break
        seen.append(config)
    return problems


def range_clashes(loaded: Iterable[Loaded]) -> list[ConfigProblem]:
    """Instances of one directory whose passive ranges overlap without being the same range.

    One range is one firewall rule; two overlapping but different ranges are almost always a
    typo, and the shared allocator would hand the common ports to both.
    """
    problems: list[ConfigProblem] = []
    keys = {"pasv_min_port", "pasv_max_port"}
    usable = sorted(
        (item for item in loaded if item.config is not None and not item.bad_keys & keys),
        key=lambda item: str(item.file),
    )
    for i, item in enumerate(usable):
        c = item.config
        assert c is not None
        for other in usable[:i]:
            o = other.config
            assert o is not None
            same_dir = o.config_dir == c.config_dir
            overlap = c.pasv_min_port <= o.pasv_max_port and o.pasv_min_port <= c.pasv_max_port
            if (
                same_dir
                and overlap
                and (c.pasv_min_port, c.pasv_max_port)
                != (
                    o.pasv_min_port,
                    o.pasv_max_port,
                )
            ):
                problem = (
                    f"{c.pasv_min_port}-{c.pasv_max_port} overlaps the passive range "
                    f'{o.pasv_min_port}-{o.pasv_max_port} of instance "{o.name}"; '
                    f"set one range in {SHARED_FILE}"
                )
                problems.append(
                    ConfigProblem(
                        item.origin.get("pasv_min_port", item.file), "pasv_min_port", problem
                    )
                )
                break
            if same_dir and c.nopriv_user != o.nopriv_user and c.state_dir == o.state_dir:
                problem = (
                    f'differs from instance "{o.name}" ({show(o.nopriv_user)}): the passive '
                    f"port lease files in state_dir belong to one account; set it in {SHARED_FILE}"
                )
                file = item.origin.get("nopriv_user", item.file)
                problems.append(ConfigProblem(file, "nopriv_user", problem))
                break
    return problems


def _can_bind_below_1024(port: int) -> bool:
    # Root without CAP_NET_BIND_SERVICE (a container, systemd's CapabilityBoundingSet) cannot
    # bind either, so the capability is what counts, not the uid.
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            if port >= int(f.read().strip()):
                return True
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_BIND_SERVICE & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def _writable(path: Path) -> bool:
    """Whether this process could write `path`, or create it in its nearest existing parent."""
    probe = path
    while True:
        try:
            st = probe.stat()
            break
        except FileNotFoundError:
            if probe.parent == probe:
                return False
            probe = probe.parent
        except OSError:
            return False  # a directory on the way we may not search: another account's
    if probe == path and not stat.S_ISDIR(st.st_mode):
        return os.access(path, os.W_OK)
    return os.access(probe, os.W_OK | os.X_OK)


def missing_account_problem(name: str) -> str:
    """The problem with a nopriv_user that does not exist, and its fix."""
    return (
        f'no account "{name}" on this host: create it with `ftpsup setup` (a system account '
        f"with no login), or set run_as_root = true to run the instances as root"
    )


def host_problems(loaded: Iterable[Loaded]) -> list[ConfigProblem]:
    """What this host and this process's privileges make impossible (`ftpsup check`, `start`)."""
    problems: list[ConfigProblem] = []
    for item in loaded:
        c = item.config
        if c is None:
            continue

        def add(key: str, problem: str, item: Loaded = item, blame: str = "") -> None:
            if key not in item.bad_keys:
                file = item.origin.get(key, blame or item.file)
                problems.append(ConfigProblem(file, key, problem))

        if c.listen_port < 1024 and not _can_bind_below_1024(c.listen_port):
            add(
                "listen_port",
                f"port {c.listen_port} needs root or CAP_NET_BIND_SERVICE, which this process "
                f"(uid {os.geteuid()}) lacks: start ftpsup as root, or use a port of 1024 or above",
            )
        # Only root drops to nopriv_user: for anyone else the default account need not exist.
        dropping = os.geteuid() == 0 or "nopriv_user" in item.origin
        if dropping and not c.run_as_root and c.nopriv_user != "root":
            try:
                if pwd.getpwnam(c.nopriv_user).pw_uid == 0:
                    add("nopriv_user", f"{show(c.nopriv_user)} has uid 0; {ROOT_ACCOUNT}")
            except KeyError:
                # A default account is one problem, where one setting for all belongs.
                shared = Path(item.file).parent / SHARED_FILE
                blame = str(shared) if shared.exists() else ""
                add("nopriv_user", missing_account_problem(c.nopriv_user), blame=blame)
        paths = [
            ("user_db_file", c.user_db_file),
            ("state_dir", c.state_dir),
            ("vsftpd_log_file", c.vsftpd_log_file),
        ]
        if c.xferlog_enable:
            paths.append(("xferlog_file", c.xferlog_file))
        for key, path in paths:
            if not _writable(path):
                add(key, f"{path} cannot be written by uid {os.geteuid()}")
    return problems
