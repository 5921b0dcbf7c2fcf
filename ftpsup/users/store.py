"""The shared user store: one TOML file of virtual users, read by every instance.

The IPv4 and IPv6 instances are separate processes that read the same file, and the
`ftpsup user ...` commands write it. The format::

    [users.alice]
    password = "$scrypt$ln=14,r=8,p=1$<salt b64>$<hash b64>"
    home = "/srv/ftp/alice"
    write = true       # may write: STOR, APPE, DELE, MKD, RMD, RNFR/RNTO
    enabled = true     # false refuses the login but keeps the account

`password` and `home` are required; `write` and `enabled` default to true. Any other key is an
error, so a typo never passes silently. Here a missing file is a store with no users (the
first `ftpsup user add` creates it); `ftpsup check` and `start` refuse it (config/check.py), as
no local user could log in.

Empty is not the same as cut short. ftpsup always writes the `[users]` table, so deleting the
last user leaves a valid store with no users: that locks everyone out because the admin said
so. A file without that table (0 bytes, blank, or only the header comment) is what a truncation
leaves, never what ftpsup writes, so it is refused like any corrupt store: `ftpsup user ...`
will not build on it, and a running instance keeps its last good copy.

Password hashes are scrypt (RFC 7914) with n = 2**ln. The default cost ln=14, r=8, p=1 takes
16 MiB of memory and about 50 ms of CPU per check; that is the point (it slows guessing), so
callers run `verify_password` in a worker thread. The salt is 16 random bytes and the hash 32
bytes, both in standard base64 without padding.

Rules:
- Rule 1: a stored hash is untrusted input. `verify_password` never raises, and refuses costs
  above ln=20, r*p=64 or 128 MiB of memory rather than letting a hostile file eat the machine.
- Rule 2: writes are atomic (temp file, fsync, `os.replace`, fsync of the directory), so a
  reader sees the old file or the new one, never half of one; readers take no lock.
- Rule 3: every read-modify-write holds an exclusive `flock` on `<store>.lock`, so two
  concurrent `ftpsup user add` never lose an update.
- Rule 4: user names are 1..32 of `[A-Za-z0-9._-]`, not starting with `-` or `.`; "anonymous"
  and "ftp" (any case) are reserved, because anonymous login is a separate feature.
- Rule 5: the store is mode 0600, or 0640 once `ftpsup setup` has given its group (the
  instances' account) read access; a rewrite keeps the owner, the group and that bit.
- Rule 6: a running instance (`UserDirectory`) never loses its users to a store that vanishes
  or goes bad: it keeps the last good copy and logs an ERROR once per change of the file, and
  a valid store is picked up again as soon as it appears.
- Rule 7: a disabled account costs the same scrypt run as a wrong password, right password or
  not, and is never served from the login cache: timing does not tell which passwords are
  right for disabled accounts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import attrs
import tomli_w

from ftpsup.errors import UserStoreError
from ftpsup.users.login_cache import LoginCache

logger = logging.getLogger("ftpsup.users")

DEFAULT_LN = 14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_LN = 20
MAX_R_TIMES_P = 64
MAX_SCRYPT_MEMORY = 128 * 1024 * 1024
RESERVED_NAMES = frozenset({"anonymous", "ftp"})

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}")
_B64 = r"[A-Za-z0-9+/]+={0,2}"
_HASH_RE = re.compile(
    rf"\$scrypt\$ln=([0-9]{{1,2}}),r=([0-9]{{1,4}}),p=([0-9]{{1,4}})\$({_B64})\$({_B64})"
)
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


@attrs.frozen
class _ScryptParams:
    ln: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def _scrypt_memory(ln: int, r: int, p: int) -> int:
    # OpenSSL's own accounting: the V array is 128*r*(N+2) bytes and B is 128*r*p.
    return 128 * r * ((1 << ln) + 2) + 128 * r * p


def _check_cost(ln: int, r: int, p: int) -> str | None:
    if not 1 <= ln <= MAX_LN:
        return f"ln must be 1..{MAX_LN}"
    if r < 1 or p < 1 or r * p > MAX_R_TIMES_P:
        return f"r and p must be positive with r*p <= {MAX_R_TIMES_P}"
    if _scrypt_memory(ln, r, p) > MAX_SCRYPT_MEMORY:
        return f"cost needs more than {MAX_SCRYPT_MEMORY >> 20} MiB"
    return None


def _os_error(path: Path, action: str, exc: OSError) -> UserStoreError:
    return UserStoreError(f"{path}: cannot {action}: {exc.strerror or exc}")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _parse_hash(stored: str) -> _ScryptParams:
    """Split a stored hash into its parts; raises ValueError on anything unexpected."""
    match = _HASH_RE.fullmatch(stored)
    if match is None:
        raise ValueError("not a $scrypt$ln=..,r=..,p=..$salt$hash string")
    ln, r, p = (int(match.group(i)) for i in (1, 2, 3))
    problem = _check_cost(ln, r, p)
    if problem is not None:
        raise ValueError(problem)
    try:
        salt = _b64decode(match.group(4))
        digest = _b64decode(match.group(5))
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from None
    if not 8 <= len(salt) <= 64 or not 16 <= len(digest) <= 64:
        raise ValueError("salt must be 8..64 bytes and hash 16..64 bytes")
    return _ScryptParams(ln=ln, r=r, p=p, salt=salt, digest=digest)


def _scrypt(password: str, ln: int, r: int, p: int, salt: bytes, dklen: int) -> bytes:
    # surrogateescape lets a session that decoded non-UTF-8 bytes that way still match.
    secret = password.encode("utf-8", "surrogateescape")
    maxmem = _scrypt_memory(ln, r, p) + (1 << 20)
    return hashlib.scrypt(secret, salt=salt, n=1 << ln, r=r, p=p, maxmem=maxmem, dklen=dklen)


def hash_password(password: str, *, ln: int = DEFAULT_LN) -> str:
    """Hash a password with scrypt and a fresh random salt.

    Args:
        password: The clear-text password.
        ln: log2 of the scrypt cost n; the default 14 costs 16 MiB and about 50 ms.
            Tests pass a small value to stay fast.

    Returns:
        A self-describing string: ``$scrypt$ln=14,r=8,p=1$<salt>$<hash>``.

    Raises:
        ValueError: ln is outside 1..20.
    """
    problem = _check_cost(ln, DEFAULT_R, DEFAULT_P)
    if problem is not None:
        raise ValueError(problem)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, ln, DEFAULT_R, DEFAULT_P, salt, HASH_BYTES)
    return f"$scrypt$ln={ln},r={DEFAULT_R},p={DEFAULT_P}${_b64encode(salt)}${_b64encode(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Check a password against a stored hash in constant time.

    Blocking (about 50 ms at the default cost): call it from a worker thread.

    Args:
        password: The clear-text password the client sent.
        stored: A hash made by `hash_password`, or anything else read from the store.

    Returns:
        True only when the password matches; False for a wrong password and for a malformed
        or hostile stored hash (never raises).
    """
    try:
        params = _parse_hash(stored)
        computed = _scrypt(password, params.ln, params.r, params.p, params.salt, len(params.digest))
    except (ValueError, TypeError, MemoryError, UnicodeError):
        return False
    return hmac.compare_digest(computed, params.digest)


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
        _parse_hash(table["password"])
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


def _parse_store(path: Path, data: bytes) -> dict[str, UserRecord]:
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
    return _parse_store(path, data)


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


class UserDirectory:
    """Read side used by a running instance: sees changes to the file without restart.

    Safe to share between worker threads. Every method blocks (stat, read, scrypt): call it
    through `trio.to_thread.run_sync`.
    """

    def __init__(self, path: Path, *, dir_fd: int | None = None) -> None:
        """Read the store at `path`, or, with `dir_fd`, the file of that name in the directory
        open on `dir_fd` (opened before the drop, ftpsup/server/anchors.py): the directories
        above it are then never passed by name, and `path` only names the store in messages.
        """
        self.path = path
        self._dir_fd = dir_fd
        self._where: str | Path = path.name if dir_fd is not None else path
        self._mutex = threading.Lock()
        # (inode, mtime, size) of the file last read, good or bad; None while there is none.
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, UserRecord] = {}
        self._has_good_copy = False
        # The trouble last logged, so each is logged once, not at every login.
        self._trouble: str | None = None
        self._logins = LoginCache()

    def _report(self, trouble: str | None, level: int = logging.ERROR) -> None:
        if trouble == self._trouble:
            return
        if trouble is not None:
            logger.log(level, "%s", trouble)
        elif self._trouble is not None:
            logger.warning("user store %s is usable again (%d users)", self.path, len(self._users))
        self._trouble = trouble

    def _keeping(self, problem: str) -> str:
        if self._has_good_copy:
            return f"{problem}; keeping the last good copy ({len(self._users)} users)"
        return f"{problem}; no local user can log in"

    def _refresh(self) -> None:
        try:
            st = os.stat(self._where, dir_fd=self._dir_fd)
        except FileNotFoundError:
            self._vanished()
            return
        except OSError as exc:
            self._report(self._keeping(f"user store {self.path}: stat failed ({exc})"))
            return
        if (st.st_ino, st.st_mtime_ns, st.st_size) == self._stamp:
            return
        try:
            fd = os.open(self._where, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._dir_fd)
            with open(fd, "rb") as f:
                # Stamp what was read, not what was stat'ed: the file may be replaced between.
                fst = os.fstat(f.fileno())
                stamp = (fst.st_ino, fst.st_mtime_ns, fst.st_size)
                data = f.read()
        except FileNotFoundError:
            self._vanished()
            return
        except OSError as exc:
            self._report(self._keeping(f"user store {self.path}: read failed ({exc})"))
            return
        # Remember the stamp even when the file is bad, so it is parsed and logged once.
        self._stamp = stamp
        try:
            users = _parse_store(self.path, data)
        except UserStoreError as exc:
            self._report(self._keeping(f"user store rejected: {exc}"))
            return
        self._logins.clear()
        self._users, self._has_good_copy = users, True
        self._report(None)

    def _vanished(self) -> None:
        # A store that was there and is gone is an accident (a bad rsync, rm): the users stay.
        # Removing users is `ftpsup user del`, which leaves a valid store behind.
        self._stamp = None
        if self._has_good_copy:
            self._report(self._keeping(f"user store {self.path} is gone"))
        else:
            self._report(self._keeping(f"user store {self.path} does not exist"), logging.WARNING)

    def lookup(self, name: str) -> UserRecord | None:
        """Return the user called `name`, disabled or not, or None; re-reads a changed file."""
        with self._mutex:
            self._refresh()
            return self._users.get(name)

    def check_cached(self, name: str, password: str) -> UserRecord | None:
        """Return the user when the login cache proves this password, without running scrypt.

        None means "not proven" (unknown user, disabled, wrong or not yet verified password):
        the caller then runs `authenticate`, which pays the full scrypt cost. Blocks on one
        stat of the store file (a changed store clears the cache first).
        """
        user = self.lookup(name)
        if user is None:
            return None
        proven = self._logins.check(name, password, user.password_hash)
        return user if proven and user.enabled else None

    def authenticate(self, name: str, password: str) -> UserRecord | None:
        """Return the user if it exists, is enabled and the password matches, else None.

        An unknown user still costs one scrypt run, so timing does not reveal which names exist,
        and a disabled user costs one whatever the password, so timing does not reveal whether
        it was right (rule 6).
        """
        user = self.lookup(name)
        if user is None:
            verify_password(password, _dummy_hash())
            return None
        if self._logins.check(name, password, user.password_hash) and user.enabled:
            return user
        # Only an enabled user's success is remembered, so a disabled account always gets here.
        if not verify_password(password, user.password_hash) or not user.enabled:
            return None
        self._logins.remember(name, password, user.password_hash)
        return user


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))
