"""The shared user store: one TOML file of virtual users, read by every instance.

The IPv4 and IPv6 instances are separate processes that read the same file, and the
`ftpsup user ...` commands write it. The format::

    [users.alice]
    password = "$scrypt$ln=14,r=8,p=1$<salt b64>$<hash b64>"
    home = "/srv/ftp/alice"
    write = true       # may write: STOR, APPE, DELE, MKD, RMD, RNFR/RNTO
    enabled = true     # false refuses the login but keeps the account

`password` (a hash made by users/hashing.py) and `home` are required; `write` and `enabled`
default to true. Any other key is an error, so a typo never passes silently. Here a missing
file is a store with no users (the first `ftpsup user add` creates it); `ftpsup check` and
`start` refuse it (config/check.py), as no local user could log in.

Empty is not the same as cut short. ftpsup always writes the `[users]` table, so deleting the
last user leaves a valid store with no users: that locks everyone out because the admin said
so. A file without that table (0 bytes, blank, or only the header comment) is what a truncation
leaves, never what ftpsup writes, so it is refused like any corrupt store: `ftpsup user ...`
will not build on it, and a running instance keeps its last good copy (users/directory.py).

Rules:
- Rule 1: writes are atomic (temp file, fsync, `os.replace`, fsync of the directory), so a
  reader sees the old file or the new one, never half of one; readers take no lock.
- Rule 2: every read-modify-write holds an exclusive `flock` on `<store>.lock`, so two
  concurrent `ftpsup user add` never lose an update.
- Rule 3: user names are 1..32 of `[A-Za-z0-9._-]`, not starting with `-` or `.`; "anonymous"
  and "ftp" (any case) are reserved, because anonymous login is a separate feature.
- Rule 4: the store is mode 0600, or 0640 once `ftpsup setup` has given its group (the
  instances' account) read access; a rewrite keeps the owner, the group and that bit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import attrs
import tomli_w

from ftpsup.errors import UserStoreError
from ftpsup.users.hashing import hash_password, parse_hash

RESERVED_NAMES = frozenset({"anonymous", "ftp"})

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}")
_USER_KEYS = frozenset({"password", "home", "write", "enabled"})
_HEADER = b"# ftpsup user store: change it with `ftpsup user ...`; hashes are scrypt.\n\n"


@attrs.frozen
class UserRecord:
    """One virtual user as the store holds it."""

    name: str
    password_hash: str
    home: Path
    may_write: bool = True
    enabled: bool = True


def _os_error(path: Path, action: str, exc: OSError) -> UserStoreError:
    return UserStoreError(f"{path}: cannot {action}: {exc.strerror or exc}")


def check_user_name(name: str) -> None:
    """Raise UserStoreError unless `name` is a valid, unreserved user name."""
    if not _NAME_RE.fullmatch(name):
        raise UserStoreError(
            f"invalid user name {name!r}: use 1..32 of A-Z a-z 0-9 . _ -, "
            "not starting with '-' or '.'"
        )
    if name.lower() in RESERVED_NAMES:
        raise UserStoreError(f"user name {name!r} is reserved (anonymous login is configured)")


def _check_password(password: str) -> None:
    if not password:
        raise UserStoreError("empty password refused")
    # RFC 959 carries PASS on a Telnet line: CR, LF and NUL could never be sent.
    if any(c in password for c in "\r\n\0"):
        raise UserStoreError("password must not contain CR, LF or NUL")


def _check_home(home: Path) -> str | None:
    if not home.is_absolute():
        return f"home must be an absolute path, not {str(home)!r}"
    if "\0" in str(home):
        return "home must not contain NUL"
    return None


def _record_from_table(path: Path, name: str, table: object) -> UserRecord:
    where = f"{path}: users.{name}"
    try:
        check_user_name(name)
    except UserStoreError as exc:
        raise UserStoreError(f"{where}: {exc}") from None
    if not isinstance(table, dict):
        raise UserStoreError(f"{where}: must be a table")
    unknown = sorted(set(table) - _USER_KEYS)
    if unknown:
        raise UserStoreError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("password", "home"):
        if key not in table:
            raise UserStoreError(f"{where}: missing {key}")
        if not isinstance(table[key], str):
            raise UserStoreError(f"{where}: {key} must be a string")
    for key in ("write", "enabled"):
        if not isinstance(table.get(key, True), bool):
            raise UserStoreError(f"{where}: {key} must be true or false")
    try:
        parse_hash(table["password"])
    except ValueError as exc:
        reason = str(exc)
        scheme = re.match(r"\$(\w+)\$", table["password"])
        if scheme and scheme.group(1) != "scrypt":
            # A hash carried over from /etc/shadow or a PAM database ($6$: SHA-512 crypt).
            reason = (
                f"${scheme.group(1)}$ is a crypt(3) hash, not scrypt: set the password again "
                f"with `ftpsup user passwd {name}`"
            )
        raise UserStoreError(f"{where}: password is not a usable hash ({reason})") from None
    home = Path(table["home"])
    problem = _check_home(home)
    if problem is not None:
        raise UserStoreError(f"{where}: {problem}")
    return UserRecord(
        name=name,
        password_hash=table["password"],
        home=home,
        may_write=table.get("write", True),
        enabled=table.get("enabled", True),
    )


def parse_store(path: Path, data: bytes) -> dict[str, UserRecord]:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserStoreError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"users"})
    if unknown:
        raise UserStoreError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if "users" not in doc:
        raise UserStoreError(
            f"{path}: no [users] table: an empty or cut-short file (ftpsup always writes one, "
            "even with no users); restore it from a backup, or remove it to start afresh"
        )
    users = doc["users"]
    if not isinstance(users, dict):
        raise UserStoreError(f"{path}: users must be a table")
    return {name: _record_from_table(path, name, table) for name, table in users.items()}


def load_users(path: Path) -> dict[str, UserRecord]:
    """Read and check the whole store.

    Args:
        path: The store file. A missing file is a store with no users.

    Returns:
        The users by name.

    Raises:
        UserStoreError: The file cannot be read or is wrong in any way; the message names the
            file, the user and the problem.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _os_error(path, "read", exc) from None
    return parse_store(path, data)


def _serialise(users: Mapping[str, UserRecord]) -> bytes:
    table: dict[str, dict[str, str | bool]] = {}
    for key in sorted(users):
        user = users[key]
        if key != user.name:
            raise UserStoreError(f"user {user.name!r} filed under the name {key!r}")
        check_user_name(user.name)
        problem = _check_home(user.home)
        if problem is not None:
            raise UserStoreError(f"user {user.name!r}: {problem}")
        table[key] = {
            "password": user.password_hash,
            "home": str(user.home),
            "write": user.may_write,
            "enabled": user.enabled,
        }
    return _HEADER + tomli_w.dumps({"users": table}).encode("utf-8")


def _write_store(path: Path, users: Mapping[str, UserRecord]) -> None:
    data = _serialise(users)
    directory = path.parent
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise _os_error(path, "stat", exc) from None
    try:
        # mkstemp creates the file 0600, so no hash is ever readable by others, even briefly.
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _os_error(path, "write", exc) from None
    try:
        with os.fdopen(fd, "wb") as tmp:
            if old is not None:
                # Keep the owner, so a store the instances' account owns stays readable to it.
                with contextlib.suppress(PermissionError):
                    os.fchown(tmp.fileno(), old.st_uid, old.st_gid)
            # Group read stays as it was: `ftpsup setup` gives it to the instances' account.
            os.fchmod(tmp.fileno(), 0o600 | (old.st_mode & 0o040 if old is not None else 0))
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise _os_error(path, "write", exc) from None
    # The rename itself is durable only once the directory is synced.
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise _os_error(directory, "sync", exc) from None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _os_error(lock_path, "open lock", exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def save_users(path: Path, users: Mapping[str, UserRecord]) -> None:
    """Replace the store atomically with `users` (mode 0600, or 0640 as before), under the lock.

    Raises:
        UserStoreError: A record is invalid or the file cannot be written.
    """
    with _locked(path):
        _write_store(path, users)


def add_user(
    path: Path,
    name: str,
    password: str,
    home: Path,
    *,
    may_write: bool = True,
    replace: bool = False,
) -> UserRecord:
    """Add a user (enabled), or replace one when `replace` is true.

    Raises:
        UserStoreError: Bad name, empty password, relative home, the user already exists
            without `replace`, or the store cannot be read or written.
    """
    check_user_name(name)
    _check_password(password)
    problem = _check_home(home)
    if problem is not None:
        raise UserStoreError(problem)
    # Hash before locking: the lock is then held for milliseconds, not the scrypt cost.
    record = UserRecord(name, hash_password(password), home, may_write=may_write)
    with _locked(path):
        users = load_users(path)
        if name in users and not replace:
            raise UserStoreError(f"{path}: user {name!r} already exists")
        users[name] = record
        _write_store(path, users)
    return record


def _update(path: Path, name: str, change: Callable[[UserRecord], UserRecord | None]) -> None:
    """Apply `change` to one existing user under the lock; a None result deletes the user."""
    with _locked(path):
        users = load_users(path)
        if name not in users:
            raise UserStoreError(f"{path}: no user {name!r}")
        new = change(users[name])
        if new is None:
            del users[name]
        else:
            users[name] = new
        _write_store(path, users)


def set_password(path: Path, name: str, password: str) -> None:
    """Give an existing user a new password.

    Raises:
        UserStoreError: Empty password, no such user, or the store cannot be used.
    """
    _check_password(password)
    new_hash = hash_password(password)
    _update(path, name, lambda user: attrs.evolve(user, password_hash=new_hash))


def delete_user(path: Path, name: str) -> None:
    """Remove a user; the home directory is left alone.

    Raises:
        UserStoreError: No such user, or the store cannot be used.
    """
    _update(path, name, lambda user: None)


def set_enabled(path: Path, name: str, enabled: bool) -> None:
    """Enable or disable a user's login without touching the rest of the record.

    Raises:
        UserStoreError: No such user, or the store cannot be used.
    """
    _update(path, name, lambda user: attrs.evolve(user, enabled=enabled))
