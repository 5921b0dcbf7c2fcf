"""One validation of a whole configuration, for `ftpsup check`, `start`, `reload` and `cert`.

Theory of operation: `check` is the only judge of a configuration. `ftpsup check` prints what
it returns; `ftpsup start` (and the supervisor it launches) and `reload` refuse on any error it
returns; `ftpsup cert` uses the instances it loaded. So what check passes, start starts, and
what start refuses, check has already reported. It runs, read-only, in this order:

1. check_paths: every file's keys and values (config.load), clashes between instances and what
   this host forbids (config.cross) (ports below 1024, unwritable paths, a missing nopriv_user);
2. files of a config directory that look like instances but are not (a warning each);
3. per instance that loaded: its TLS certificate and key (tls.contexts.tls_problems), what
   nopriv_user could not reach after the drop (accounts.reach_problems, as root), and its user
   store (load_users: missing, a directory, broken TOML, a hash that is not scrypt);
4. settings that work but weaken security (warnings).

Rules:
1. Every problem names the file that sets the key at fault (`origin`): a certificate set in
   _shared.toml is one problem against _shared.toml, however many instances inherit it.
2. Each problem is reported once; they are grouped by file, in the order found.
3. A warning stops nothing; any other problem stops check (exit 1), start and reload.
4. Read-only: nothing here creates, chowns or binds. `start` then prepares the directories
   (accounts.prepare_paths) and reports what that finds the same way (`blame`).
5. Files are named as the admin gave them: `ftpsup check instances.d` says
   `instances.d/_shared.toml` for every problem there, whichever step found it. A user store
   given by name (`ftpsup check users.toml`) is checked as a store, never as an instance.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from ftpsup.config.cross import host_problems, listen_clashes, range_clashes
from ftpsup.config.load import (
    USER_DB_NAME,
    Layer,
    Loaded,
    instance_paths,
    load_file,
    load_instance,
    not_instance_reason,
    read_shared,
    user_db_path,
)
from ftpsup.config.schema import SHARED_FILE, InstanceConfig
from ftpsup.errors import ConfigError, ConfigProblem, SettingProblem, UserStoreError
from ftpsup.tls.certs import EXPIRY_WARNING_DAYS
from ftpsup.users import accounts
from ftpsup.users.store import load_users

_SSL_REUSE = (
    "false lets a data connection use a TLS session other than the control connection's, so "
    "whoever reaches the passive port first can take over a transfer (data connection "
    "stealing); keep true (vsftpd's default) unless a client cannot resume sessions"
)


@attrs.frozen
class Checked:
    """A configuration, judged."""

    configs: list[InstanceConfig]  # the instances that loaded without a problem of their own
    problems: list[ConfigProblem]  # errors and warnings, grouped by file

    @property
    def errors(self) -> list[ConfigProblem]:
        """The problems that stop check, start and reload."""
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[ConfigProblem]:
        return [p for p in self.problems if p.warning]


def check_paths(paths: Sequence[str | Path]) -> list[ConfigProblem]:
    """Check instance files and config directories, as ``ftpsup check`` does.

    Args:
        paths: Instance files, or config directories (every instance file in one is checked,
            and its _shared.toml). The _shared.toml beside an instance file is always read.

    Returns:
        Every problem in every file, each reported once and grouped by file; clashes between
        instances of one directory (same address and port, overlapping passive ranges that
        differ, different nopriv_user); and what this host forbids (a port below 1024 without
        the privilege, a path that cannot be written, an unknown nopriv_user). An empty list
        means all is well.
    """
    problems: list[ConfigProblem] = []
    shared_by_dir: dict[Path, Layer | None] = {}
    loaded: dict[Path, Loaded] = {}

    def shared_for(config_dir: Path) -> Layer | None:
        key = config_dir.absolute()
        if key not in shared_by_dir:
            shared_by_dir[key] = read_shared(config_dir)
        return shared_by_dir[key]

    for given in paths:
        path = Path(given)
        files = [path]
        if path.is_dir():
            files = instance_paths(path)
            shared = shared_for(path)
            problems += shared.problems if shared else []
            if not files:
                problems.append(ConfigProblem(str(path), None, "no instance files in directory"))
        elif path.name == SHARED_FILE:
            shared = shared_for(path.parent)
            problems += (
                shared.problems if shared else [ConfigProblem(str(path), None, "no such file")]
            )
            files = []
        for file in files:
            if file.absolute() not in loaded:
                loaded[file.absolute()] = item = load_file(file, shared_for(file.parent))
                problems += item.problems
    problems += listen_clashes(loaded.values())
    problems += range_clashes(loaded.values())
    problems += host_problems(loaded.values())
    # Grouped by file (stable, so each file's problems keep their order) for the admin's editor.
    return sorted(dict.fromkeys(problems), key=lambda problem: problem.file)


def _instance_files(targets: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for target in targets:
        if target.is_dir():
            files += instance_paths(target)
        elif target.name != SHARED_FILE:
            files.append(target)
    return list(dict.fromkeys(files))


def load(targets: Sequence[str | Path]) -> list[InstanceConfig]:
    """The instances among `targets` (files or config directories) that load cleanly."""
    configs = []
    for file in _instance_files([Path(t) for t in targets]):
        try:
            configs.append(load_instance(file))
        except ConfigError:
            continue  # check_paths reports it
    return configs


def origin(config: InstanceConfig, key: str) -> str:
    """The file that sets `key` for `config`: its own file, else _shared.toml.

    A key set in neither has its default, which every instance shares: _shared.toml (when
    there is one) is where it would be changed, and one problem there is reported once.
    """
    shared = config.config_dir / SHARED_FILE
    for path in (config.source, shared):
        try:
            with path.open("rb") as f:
                if key in tomllib.load(f):
                    return str(path)
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return str(shared if shared.exists() else config.source)


def blame(
    config: InstanceConfig, found: Iterable[SettingProblem], *, warning: bool = False
) -> list[ConfigProblem]:
    """Each problem about `config` against the file that sets its first key (`origin`)."""
    problems = []
    for item in found:
        if not item.keys:
            problems.append(ConfigProblem(str(config.source), None, item.problem, warning=warning))
            continue
        file = origin(config, item.keys[0])
        problems.append(ConfigProblem(file, ", ".join(item.keys), item.problem, warning=warning))
    return problems


def from_lines(
    config: InstanceConfig, lines: Iterable[str], *, warning: bool = False
) -> list[ConfigProblem]:
    """`blame` for the sources that still report "key: problem" lines (TLS, preflight)."""
    found = []
    for line in lines:
        key, sep, text = line.partition(": ")
        if not sep or " " in key.replace(", ", ","):
            found.append(SettingProblem((), line))
        else:
            found.append(SettingProblem(tuple(key.replace(", ", ",").split(",")), text))
    return blame(config, found, warning=warning)


def _skipped(targets: Sequence[Path]) -> list[ConfigProblem]:
    """A warning for each *.toml of a config directory that is not read as an instance."""
    problems = []
    for target in targets:
        if not target.is_dir():
            continue
        store = user_db_path(target)
        for path in sorted(target.glob("*.toml")):
            reason = not_instance_reason(path)
            # _shared.toml, the store in use and editor files are expected; say nothing.
            if reason is None or path.name == SHARED_FILE or path.name.startswith("."):
                continue
            if path.absolute() == store:
                continue
            text = f"skipped, not an instance: {reason}"
            problems.append(ConfigProblem(str(path), None, text, warning=True))
    return problems


def _tls(configs: Iterable[InstanceConfig], warn_days: int) -> list[ConfigProblem]:
    from ftpsup.tls.contexts import tls_problems  # ssl and cryptography: only when needed

    problems: list[ConfigProblem] = []
    for config in configs:
        errors = tls_problems(config)
        soon = [p for p in tls_problems(config, warn_days=warn_days) if p not in errors]
        problems += from_lines(config, errors) + from_lines(config, soon, warning=True)
    return problems


def _reach(configs: Iterable[InstanceConfig]) -> list[ConfigProblem]:
    """As root: what nopriv_user could not reach once an instance has dropped to it."""
    problems: list[ConfigProblem] = []
    for config in configs:
        try:
            account = accounts.instance_account(config)
        except accounts.AccountError:
            continue  # check_paths reports it
        if account is not None:
            problems += blame(config, accounts.reach_problems(config, account))
    return problems


def store_problems(config: InstanceConfig) -> list[ConfigProblem]:
    """What keeps the user store from serving logins: missing, unreadable or invalid."""
    if not config.local_enable:
        return []
    # Shared-only: set in _shared.toml or nowhere, and one store is one problem either way.
    return _store_file_problems(config.user_db_file, str(config.config_dir / SHARED_FILE))


def _store_file_problems(path: Path, where: str) -> list[ConfigProblem]:
    if not path.exists():
        text = (
            f"{path} does not exist, so no local user can log in: create it with "
            "`ftpsup user add NAME --home DIR` (or `ftpsup setup`, which writes an empty one)"
        )
        return [ConfigProblem(where, "user_db_file", text)]
    if path.is_dir():
        return [ConfigProblem(where, "user_db_file", f"{path} is a directory, not a file")]
    try:
        load_users(path)
    except UserStoreError as exc:
        text = str(exc)
        prefix = f"{path}: "
        if text.startswith(prefix):
            return [ConfigProblem(str(path), None, text.removeprefix(prefix))]
        return [ConfigProblem(where, "user_db_file", text)]
    return []


def _user_stores(targets: list[Path]) -> tuple[list[Path], list[ConfigProblem]]:
    """Given files that are user stores (`ftpsup check users.toml`) checked as stores.

    Returns the other targets, and the stores' problems.
    """
    others: list[Path] = []
    problems: list[ConfigProblem] = []
    for target in targets:
        store = target.name == USER_DB_NAME or target.absolute() == user_db_path(target.parent)
        if store and not target.is_dir():
            problems += _store_file_problems(target, str(target.parent / SHARED_FILE))
        else:
            others.append(target)
    return others, problems


def _stores(configs: Iterable[InstanceConfig]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    seen: set[Path] = set()
    for config in configs:
        if config.local_enable and config.user_db_file not in seen:
            seen.add(config.user_db_file)
            problems += store_problems(config)
    return problems


def _weak(configs: Iterable[InstanceConfig]) -> list[ConfigProblem]:
    problems = []
    for config in configs:
        if config.ssl_enable and not config.require_ssl_reuse:
            where = origin(config, "require_ssl_reuse")
            problems.append(ConfigProblem(where, "require_ssl_reuse", _SSL_REUSE, warning=True))
    return problems


def check(targets: Sequence[str | Path], *, warn_days: int = EXPIRY_WARNING_DAYS) -> Checked:
    """Judge instance files and config directories, as `ftpsup check` and `start` do.

    Args:
        targets: Instance files or config directories (each with the _shared.toml beside).
        warn_days: Warn about a certificate that expires within this many days.

    Returns:
        The instances that loaded, and every problem (see the module docstring).
    """
    paths, problems = _user_stores([Path(t) for t in targets])
    configs = load(paths)
    problems += check_paths(paths) + _skipped(paths)
    problems += _tls(configs, warn_days) + _reach(configs) + _stores(configs) + _weak(configs)
    unique = dict.fromkeys(_as_given(problems, paths))
    return Checked(configs, sorted(unique, key=lambda problem: problem.file))


def _as_given(problems: list[ConfigProblem], targets: list[Path]) -> list[ConfigProblem]:
    """Name every file of a target's directory as the admin wrote it (relative stays relative).

    check_paths names files as given; instances know their absolute source.
    """
    given = {
        (t if t.is_dir() else t.parent).absolute(): t if t.is_dir() else t.parent for t in targets
    }
    out = []
    for problem in problems:
        file = Path(problem.file)
        directory = given.get(file.parent) if file.is_absolute() else None
        if directory is not None:
            problem = attrs.evolve(problem, file=str(directory / file.name))
        out.append(problem)
    return out
