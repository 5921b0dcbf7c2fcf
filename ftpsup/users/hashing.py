"""Password hashes: scrypt (RFC 7914), self-describing strings, checks that never raise.

A stored hash reads `$scrypt$ln=14,r=8,p=1$<salt b64>$<hash b64>`, with n = 2**ln. The default
cost ln=14, r=8, p=1 takes 16 MiB of memory and about 50 ms of CPU per check; that is the
point (it slows guessing), so callers run `verify_password` in a worker thread. The salt is 16
random bytes and the hash 32 bytes, both in standard base64 without padding.

Rules:
- A stored hash is untrusted input. `verify_password` never raises, and refuses costs above
  ln=20, r*p=64 or 128 MiB of memory rather than letting a hostile file eat the machine.
- `dummy_hash` is what an unknown user's password is checked against, so a wrong name costs
  the same scrypt run as a wrong password.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets

import attrs

DEFAULT_LN = 14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_LN = 20
MAX_R_TIMES_P = 64
MAX_SCRYPT_MEMORY = 128 * 1024 * 1024

_B64 = r"[A-Za-z0-9+/]+={0,2}"
_HASH_RE = re.compile(
    rf"\$scrypt\$ln=([0-9]{{1,2}}),r=([0-9]{{1,4}}),p=([0-9]{{1,4}})\$({_B64})\$({_B64})"
)


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


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def parse_hash(stored: str) -> _ScryptParams:
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
        params = parse_hash(stored)
        computed = _scrypt(password, params.ln, params.r, params.p, params.salt, len(params.digest))
    except (ValueError, TypeError, MemoryError, UnicodeError):
        return False
    return hmac.compare_digest(computed, params.digest)


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, made once: the stand-in for a user that does not exist."""
    return hash_password(secrets.token_hex(16))
