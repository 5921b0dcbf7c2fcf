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
  ssl_reuse_scope = "user" of any control connection of the same logged-in user from the
  same client address: clients with several control connections and one session cache per
  server (rclone: Go's crypto/tls keys its cache by server name) offer a session another of
  their control connections received, and that one may have ended already (rclone closes
  surplus connections). So a closed control connection's sessions stay on record, with the
  user it had, for as long as OpenSSL can resume them (SESSION_SECONDS), and for the newest
  CLOSED_KEPT connections at most. Anything else is refused, with the reason.
- A client like rclone may also offer the session of a control connection it has just opened
  and not yet logged in on (AUTH TLS issues the ticket, the login follows). The check then
  waits, in its worker thread and for a bounded time, for that connection's login to settle,
  and decides on the user it logged in as: a session is never taken for a user it might get.
  Likewise for a session not on record yet: the client can hold a control connection's ticket
  before the event loop has recorded it, so an unknown id is looked up again as records are
  added, for up to UNKNOWN_WAIT_SECONDS.
- OpenSSL copies `num_tickets` from the context into each connection when it is made, and the
  context is shared between threads: `wrap_issuing` sets and wraps under one lock.
"""

from __future__ import annotations

import collections
import itertools
import os
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import attrs

from ftpsup.config.schema import InstanceConfig
from ftpsup.tls.contexts import make_context

T = TypeVar("T")

SCOPE_CONNECTION = "connection"
SCOPE_USER = "user"
# Download-issued session ids remembered per control connection, besides its handshake's
# (kept for its lifetime: most clients resume from it every time). Clients that move on to a
# newer ticket resume from their newest, so older ones are dropped.
IDS_PER_OWNER = 8

# How long OpenSSL lets a session resume: its default session timeout, which the ssl module
# cannot change (measured: SSLSession.timeout and ticket_lifetime_hint are 7200).
SESSION_SECONDS = 7200.0
# Closed control connections whose sessions stay on record, newest first: a bound on memory
# whatever the connection rate.
CLOSED_KEPT = 4096
# How long a resumed session unknown to the registry is waited for (see the docstring): the
# time from a control handshake's end to its record is one trip through the event loop.
UNKNOWN_WAIT_SECONDS = 5.0

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
    # time.monotonic() when the control connection closed; None while it is open.
    closed_at: float | None = None
    # Set while the control connection is logged in, and once it has closed.
    settled: threading.Event = attrs.field(factory=threading.Event)
    ids: collections.deque[bytes] = attrs.field(
        factory=lambda: collections.deque(maxlen=IDS_PER_OWNER)
    )


class SessionRegistry:
    """Session id -> owning control connection, for one instance (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        # Notified whenever a session is recorded.
        self._recorded = threading.Condition(self._lock)
        self._owners: dict[bytes, SessionOwner] = {}
        # (when it closed, owner), oldest first.
        self._closed: collections.deque[tuple[float, SessionOwner]] = collections.deque()
        self._serials = itertools.count(1)
        self._clock = clock

    def new_owner(self, address: str) -> SessionOwner:
        return SessionOwner(next(self._serials), address)

    def issued(
        self, owner: SessionOwner, session_id: bytes | None, *, control: bool = False
    ) -> None:
        """Record that the session `session_id` was issued to `owner`'s client.

        Args:
            owner: The control connection.
            session_id: The session's id.
            control: The session is that of `owner`'s own handshake. A TLS 1.2 control
                connection that resumed an earlier connection's session keeps its id, and
                takes it over: its client holds the secret.
        """
        if not session_id:
            return
        with self._lock:
            if owner.closed_at is not None:
                return
            # A TLS 1.2 session a data connection resumed keeps its id: it stays its owner's.
            if session_id in self._owners and not control:
                return
            self._owners[session_id] = owner
            self._recorded.notify_all()
            if owner.control_id is None:
                owner.control_id = session_id
                return
            if len(owner.ids) == owner.ids.maxlen:
                self._owners.pop(owner.ids[0], None)
            owner.ids.append(session_id)

    def logged_in(self, owner: SessionOwner, user: str) -> None:
        """The control connection logged in: its sessions now belong to `user`."""
        with self._lock:
            owner.user = user
        owner.settled.set()

    def logged_out(self, owner: SessionOwner) -> None:
        with self._lock:
            if owner.closed_at is None:
                owner.user = None
                owner.settled.clear()

    def closed(self, owner: SessionOwner) -> None:
        """The control connection closed: its sessions keep its user, and expire in time."""
        owner.settled.set()
        with self._lock:
            now = self._clock()
            owner.closed_at = now
            self._closed.append((now, owner))
            while self._closed and (
                len(self._closed) > CLOSED_KEPT or now - self._closed[0][0] >= SESSION_SECONDS
            ):
                self._drop(self._closed.popleft()[1])

    def _drop(self, owner: SessionOwner) -> None:
        for session_id in (owner.control_id, *owner.ids):
            if session_id is not None and self._owners.get(session_id) is owner:
                del self._owners[session_id]
        owner.ids.clear()
        owner.control_id = None

    def owner_of(self, session_id: bytes) -> SessionOwner | None:
        with self._lock:
            return self._owners.get(session_id)

    def check_reuse(
        self, claimant: SessionOwner, resumed_id: bytes | None, scope: str, *, wait: float = 0
    ) -> str | None:
        """Why the data connection of `claimant` may not use `resumed_id`, or None if it may.

        Blocks for up to `wait` seconds when the session's control connection, from the same
        address, has not logged in yet.

        Args:
            claimant: The control connection whose transfer this is.
            resumed_id: The id of the session the data connection resumed; None when it made
                a full handshake.
            scope: ssl_reuse_scope.
            wait: How long to wait for a login to settle.
        """
        if resumed_id is None:
            return "did not resume a TLS session"
        # Only another control connection's session can be used before it is recorded: a
        # connection's own are recorded before its next command is read.
        unknown_wait = min(wait, UNKNOWN_WAIT_SECONDS) if scope == SCOPE_USER else 0
        with self._recorded:
            self._recorded.wait_for(lambda: resumed_id in self._owners, timeout=unknown_wait)
            owner = self._owners.get(resumed_id)
        if owner is claimant:
            return None
        if (
            owner is not None
            and scope == SCOPE_USER
            and owner.address == claimant.address
            and owner.user is None
        ):
            owner.settled.wait(wait)
        if owner is None:
            return "resumed a session this instance has no record of"
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
