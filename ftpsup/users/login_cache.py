"""LoginCache: remembers successful password checks so a returning client skips scrypt.

Clients open several connections with the same credentials (FileZilla's parallel transfers,
lftp's mirror, curl per URL), and each login would otherwise cost a full scrypt run (~50 ms
of CPU). A success is remembered as an HMAC of the password under a key that lives only in
this process's memory, next to the stored hash it was checked against.

Rules:
- Only successes are cached; a wrong password always pays the full scrypt cost.
- An entry counts only while the user's stored hash is unchanged, and the whole cache is
  dropped whenever the user store file changes (UserDirectory calls clear()).
- Comparison is constant-time, and `check` computes the HMAC whether or not there is an
  entry: a miss costs what a mismatch costs. The cache is bounded.
- Only enabled users are remembered (UserDirectory), so a disabled account's login always
  pays the full scrypt cost, like a wrong password: the cache is no timing oracle for it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

MAX_ENTRIES = 10_000


class LoginCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._key = secrets.token_bytes(32)
        self._entries: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def _digest(self, name: str, password: str) -> bytes:
        message = (
            name.encode("utf-8", "surrogatepass")
            + b"\0"
            + password.encode("utf-8", "surrogatepass")
        )
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def check(self, name: str, password: str, stored_hash: str) -> bool:
        """True when this exact password was verified for `name` against `stored_hash`."""
        digest = self._digest(name, password)
        with self._lock:
            entry = self._entries.get(name)
        if entry is None or entry[0] != stored_hash:
            return False
        return hmac.compare_digest(entry[1], digest)

    def remember(self, name: str, password: str, stored_hash: str) -> None:
        digest = self._digest(name, password)
        with self._lock:
            if len(self._entries) >= self._max and name not in self._entries:
                # Dropping everything is simple and rare; the next logins re-verify.
                self._entries.clear()
            self._entries[name] = (stored_hash, digest)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
