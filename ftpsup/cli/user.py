"""The `ftpsup user ...` commands: add, passwd, del, disable, enable and list virtual users.

Rules:
- Messages and errors go to stderr; only `user list` writes to stdout, so its output can be
  piped. Exit status 0 on success, 1 on any error.
- A password is read with getpass (twice, compared) or, with --password-stdin, as one line of
  standard input. It is never echoed, logged or listed; `user list` never shows a hash.
- A password shorter than MIN_PASSWORD_LENGTH characters is refused unless --allow-weak is
  given (a demo account, a test): FTP sends it in clear text unless TLS is used, and a short
  one is guessed online, however slow scrypt makes each try.
- The store path is `args.user_db` when given, else `args.default_user_db`, which the main CLI
  resolves from the configuration directory.
- `user add` creates a missing home directory (mode 0755, and 0755 for each missing parent,
  whatever the umask, so the instances' account can pass them), as `useradd -m` does; run as root,
  it belongs to the instances' account (`args.instance_account`), which serves the user's files.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from ftpsup.errors import UserStoreError
from ftpsup.users.accounts import Account, grant_read
from ftpsup.users.store import (
    add_user,
    check_user_name,
    delete_user,
    load_users,
    set_enabled,
    set_password,
)

DEFAULT_HOME_ROOT = Path("/srv/ftp")
MIN_PASSWORD_LENGTH = 8


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `user` command and its sub-commands to a CLI's sub-parsers.

    Args:
        subparsers: What `ArgumentParser.add_subparsers()` returned.
    """
    user = subparsers.add_parser("user", help="manage the virtual users of the shared store")
    commands = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, *, named: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        if named:
            parser.add_argument("name", metavar="NAME", help="user name")
        parser.add_argument(
            "--user-db",
            dest="user_db",
            type=Path,
            default=None,
            metavar="PATH",
            help="user store file (default: the one named in _shared.toml)",
        )
        return parser

    add = command("add", "add a user")
    add.add_argument("--home", type=Path, metavar="DIR", help="home directory (/srv/ftp/NAME)")
    add.add_argument("--read-only", action="store_true", help="the user may not write")
    add.add_argument("--replace", action="store_true", help="replace an existing user")
    passwd = command("passwd", "set a user's password")
    for parser in (add, passwd):
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        parser.add_argument(
            "--allow-weak",
            action="store_true",
            help=f"accept a password shorter than {MIN_PASSWORD_LENGTH} characters",
        )
    command("del", "delete a user (the home directory is kept)")
    command("disable", "refuse a user's logins, keeping the account")
    command("enable", "allow a disabled user to log in again")
    command("list", "list users: name, home, write, enabled", named=False)


def _error(message: str) -> int:
    print(f"ftpsup: {message}", file=sys.stderr)
    return 1


def _store_path(args: argparse.Namespace) -> Path:
    path = getattr(args, "user_db", None) or getattr(args, "default_user_db", None)
    if path is None:
        raise UserStoreError("no user store: give --user-db or set it in _shared.toml")
    return Path(path)


def _read_password(from_stdin: bool, *, allow_weak: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Retype password: ")
        except (EOFError, KeyboardInterrupt):
            raise UserStoreError("no password given") from None
        if password != again:
            raise UserStoreError("passwords do not match")
    if not password:
        raise UserStoreError("empty password refused")
    if len(password) < MIN_PASSWORD_LENGTH and not allow_weak:
        raise UserStoreError(
            f"password refused: shorter than {MIN_PASSWORD_LENGTH} characters "
            f"(--allow-weak accepts it)"
        )
    return password


def _make_home(home: Path, owner: Account | None) -> None:
    if home.is_dir():
        return
    # Missing parents too are made 0755 whatever the umask (as `install -d`): the instances'
    # account passes them to reach the home, e.g. /srv/ftpsup for /srv/ftpsup/demo.
    missing = [home, *(p for p in home.parents if not p.exists())]
    home.mkdir(parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask; the home must end up exactly 0755.
    for directory in missing:
        os.chmod(directory, 0o755)
    if owner is not None:
        os.chown(home, owner.uid, owner.gid)


def _add(args: argparse.Namespace, store: Path) -> int:
    name: str = args.name
    check_user_name(name)
    home: Path = args.home if args.home is not None else DEFAULT_HOME_ROOT / name
    home = Path(os.path.abspath(home))
    # Check before prompting, so the admin does not type a password for nothing.
    if name in load_users(store) and not args.replace:
        return _error(f"user {name!r} already exists (use --replace to overwrite it)")
    password = _read_password(args.password_stdin, allow_weak=args.allow_weak)
    add_user(store, name, password, home, may_write=not args.read_only, replace=args.replace)
    try:
        _make_home(home, getattr(args, "instance_account", None))
    except OSError as exc:
        return _error(f"user {name!r} added, but its home {home} could not be created: {exc}")
    access = "read-only" if args.read_only else "read-write"
    print(f"ftpsup: user {name!r} added ({access}, home {home})", file=sys.stderr)
    return 0


def _passwd(args: argparse.Namespace, store: Path) -> int:
    if args.name not in load_users(store):
        return _error(f"{store}: no user {args.name!r}")
    set_password(store, args.name, _read_password(args.password_stdin, allow_weak=args.allow_weak))
    print(f"ftpsup: password of {args.name!r} changed", file=sys.stderr)
    return 0


def _list(store: Path) -> int:
    users = load_users(store)
    rows = [("NAME", "HOME", "WRITE", "ENABLED")]
    for name in sorted(users):
        user = users[name]
        yes_no = ("yes" if user.may_write else "no", "yes" if user.enabled else "no")
        rows.append((name, str(user.home), *yes_no))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[3]]))
    return 0


def run(args: argparse.Namespace) -> int:
    """Carry out one `ftpsup user ...` command.

    Args:
        args: The parsed arguments from the parser `add_parser` built, with `user_db` or
            `default_user_db` naming the store.

    Returns:
        The exit status: 0 on success, 1 on error (the message is on stderr).
    """
    try:
        store = _store_path(args)
        command: str = args.user_command
        if command == "add":
            return _share(_add(args, store), store, args)
        if command == "passwd":
            return _share(_passwd(args, store), store, args)
        if command == "list":
            return _list(store)
        if command == "del":
            delete_user(store, args.name)
            print(f"ftpsup: user {args.name!r} deleted (home kept)", file=sys.stderr)
        elif command in ("disable", "enable"):
            set_enabled(store, args.name, command == "enable")
            print(f"ftpsup: user {args.name!r} {command}d", file=sys.stderr)
        else:
            return _error(f"unknown user command {command!r}")
    except UserStoreError as exc:
        return _error(str(exc))
    return _share(0, store, args)


def _share(status: int, store: Path, args: argparse.Namespace) -> int:
    """Keep a store root just wrote readable by the instances' account (0640)."""
    account: Account | None = getattr(args, "instance_account", None)
    if account is not None and store.exists():
        try:
            grant_read(store, account)
        except OSError as exc:
            return _error(f"{store}: cannot share it with {account.name}: {exc.strerror}")
    return status
