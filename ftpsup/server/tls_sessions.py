"""TLS sessions of one instance: the shared server context, and whose each session is.

Theory of operation: an instance serves every control connection from one `ssl.SSLContext`
(rebuilt only when the certificate, key or CA files change), so any data connection can
resume any session the instance issued. Which sessions it may resume is decided here, from a
record of the session ids each control connection was issued:

- The context keeps sessions on the server (`OP_NO_TICKET`): a TLS 1.2 session id and a TLS
  1.3 ticket are then the key of a session in the context's cache, chosen by OpenSSL, and the
  session a data connection resumes carries that same id. With stateless TLS 1.2 tickets the
  resumed session would carry an id the *client* chose, which proves nothing. A client can
  only resume a session whose secret it holds, so the id names the control connection (the
  "owner") it was issued to.
- A control connection records the session of its handshake (one TLS 1.3 ticket, so there is
  exactly one), and a download's data connection records the fresh ticket it issues.
- `check_reuse` accepts a resumed session of the claimant's own control connection, or with
  ssl_reuse_scope = "user" of any open control connection of the same logged-in user from the
  same client address: clients with several control connections and one session cache per
  server (rclone: Go's crypto/tls keys its cache by server name) offer a session another of
  their control connections received. Anything else is refused, with the reason.
- OpenSSL copies `num_tickets` from the context into each connection when it is made, and the
  context is shared between threads: `wrap_issuing` sets and wraps under one lock.
"""

from __future__ import annotations

import collections
import itertools
import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import attrs

from ftpsup.config import InstanceConfig
from ftpsup.tls_config import make_context

T = TypeVar("T")

SCOPE_CONNECTION = "connection"
SCOPE_USER = "user"
# Download-issued session ids remembered per control connection, besides its handshake's
# (kept for its lifetime: most clients resume from it every time). Clients that move on to a
# newer ticket resume from their newest, so older ones are dropped.
IDS_PER_OWNER = 8

_WRAP_LOCK = threading.Lock()


def wrap_issuing(ctx: ssl.SSLContext, tickets: int, wrap: Callable[[], T]) -> T:
    """Run `wrap` (which makes one connection of `ctx`) so that it issues `tickets` tickets."""
    # Held only while OpenSSL allocates the connection, never during a handshake.
    with _WRAP_LOCK:
        ctx.num_tickets = tickets
        return wrap()


@attrs.define(eq=False)
class SessionOwner:
    """A TLS control connection, as the sessions issued to it know it."""

    serial: int
    address: str
    user: str | None = None
    control_id: bytes | None = None
    closed: bool = False
    ids: collections.deque[bytes] = attrs.field(
        factory=lambda: collections.deque(maxlen=IDS_PER_OWNER)
    )


class SessionRegistry:
    """Session id -> owning control connection, for one instance (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[bytes, SessionOwner] = {}
        self._serials = itertools.count(1)

    def new_owner(self, address: str) -> SessionOwner:
        return SessionOwner(next(self._serials), address)

    def issued(self, owner: SessionOwner, session_id: bytes | None) -> None:
        """Record that the session `session_id` was issued to `owner`'s client."""
        if not session_id:
            return
        with self._lock:
            if owner.closed:
                return
            # A TLS 1.2 session resumed keeps its id: it stays its first owner's.
            if session_id in self._owners:
                return
            self._owners[session_id] = owner
            if owner.control_id is None:
                owner.control_id = session_id
                return
            if len(owner.ids) == owner.ids.maxlen:
                self._owners.pop(owner.ids[0], None)
            owner.ids.append(session_id)

    def forget(self, owner: SessionOwner) -> None:
        """The control connection closed: its sessions resume for nobody any more."""
        with self._lock:
            for session_id in (owner.control_id, *owner.ids):
                if session_id is not None and self._owners.get(session_id) is owner:
                    del self._owners[session_id]
            owner.ids.clear()
            owner.control_id = None
            owner.closed = True

    def owner_of(self, session_id: bytes) -> SessionOwner | None:
        with self._lock:
            return self._owners.get(session_id)

    def check_reuse(
        self, claimant: SessionOwner, resumed_id: bytes | None, scope: str
    ) -> str | None:
        """Why the data connection of `claimant` may not use `resumed_id`, or None if it may.

        Args:
            claimant: The control connection whose transfer this is.
            resumed_id: The id of the session the data connection resumed; None when it made
                a full handshake.
            scope: ssl_reuse_scope.
        """
        if resumed_id is None:
            return "did not resume a TLS session"
        owner = self.owner_of(resumed_id)
        if owner is claimant:
            return None
        if owner is None:
            return "resumed a session of no open control connection"
        if scope != SCOPE_USER:
            return (
                f"resumed the session of another control connection (#{owner.serial}), "
                f'and ssl_reuse_scope = "{scope}"'
            )
        if owner.address != claimant.address:
            return (
                f"resumed the session of control connection #{owner.serial} from "
                f"another address ({owner.address})"
            )
        if owner.user is None or owner.user != claimant.user:
            return (
                f"resumed the session of control connection #{owner.serial} of another "
                f"user ({owner.user or 'not logged in'})"
            )
        return None


def session_id(session: ssl.SSLSession | None) -> bytes | None:
    """The id of `session`, as the registry keys it."""
    return session.id if session is not None else None


def _files_signature(config: InstanceConfig) -> tuple[object, ...]:
    """What identifies the certificate files' contents without reading them."""
    signature: list[object] = []
    paths = (config.rsa_cert_file, config.rsa_private_key_file, config.ca_certs_file)
    for path in paths:
        if path is None:
            signature.append(None)
            continue
        try:
            st = os.stat(Path(path))
        except OSError:
            # make_context reports the problem; an unreadable file never matches a cached one.
            return (object(),)
        signature.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(signature)


@attrs.define(eq=False)
class InstanceTls:
    """The instance's shared server context and its session registry."""

    registry: SessionRegistry = attrs.field(factory=SessionRegistry)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _context: ssl.SSLContext | None = None
    _signature: tuple[object, ...] = ()

    def context(self, config: InstanceConfig) -> ssl.SSLContext:
        """The shared context, rebuilt when the certificate files changed (blocking).

        Certificates renewed on disk reach new control connections without a restart; open
        control connections keep the context they began with, and so do their data
        connections.

        Raises:
            TlsSetupError: the files or settings cannot make a context.
        """
        signature = _files_signature(config)
        with self._lock:
            if self._context is None or signature != self._signature:
                self._context = make_context(config)
                self._signature = signature
            return self._context
