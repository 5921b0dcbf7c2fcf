"""The session registry's reuse rule, and the instance's shared TLS context (no sockets)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ftpsup.config.schema import InstanceConfig
from ftpsup.server.tls_sessions import (
    CLOSED_KEPT,
    IDS_PER_OWNER,
    SCOPE_CONNECTION,
    SCOPE_USER,
    SESSION_SECONDS,
    InstanceTls,
    SessionOwner,
    SessionRegistry,
)
from ftpsup.tls.certs import write_self_signed


def _owner(registry: SessionRegistry, address: str, user: str | None, sid: bytes) -> SessionOwner:
    owner = registry.new_owner(address)
    if user is not None:
        registry.logged_in(owner, user)
    registry.issued(owner, sid)
    return owner


def _check_while(
    registry: SessionRegistry, owner: SessionOwner, offered: bytes, meanwhile: Callable[[], None]
) -> list[str | None]:
    """The verdict on `offered` of a check that may wait (in its thread) while `meanwhile` runs."""
    verdicts: list[str | None] = []
    checking = threading.Thread(
        target=lambda: verdicts.append(registry.check_reuse(owner, offered, SCOPE_USER, wait=30))
    )
    checking.start()
    meanwhile()
    checking.join(timeout=30)
    return verdicts


def test_own_session_is_accepted_in_both_scopes() -> None:
    registry = SessionRegistry()
    a = _owner(registry, "192.0.2.1", "alice", b"A" * 32)

    assert registry.check_reuse(a, b"A" * 32, SCOPE_USER) is None
    assert registry.check_reuse(a, b"A" * 32, SCOPE_CONNECTION) is None


def test_same_user_and_address_is_accepted_only_in_user_scope() -> None:
    registry = SessionRegistry()
    a = _owner(registry, "192.0.2.1", "alice", b"A" * 32)
    b = _owner(registry, "192.0.2.1", "alice", b"B" * 32)

    assert registry.check_reuse(b, b"A" * 32, SCOPE_USER) is None
    refusal = registry.check_reuse(b, b"A" * 32, SCOPE_CONNECTION)
    assert refusal is not None
    assert f"another control connection (#{a.serial})" in refusal


def test_another_users_session_is_refused_and_named() -> None:
    registry = SessionRegistry()
    _owner(registry, "192.0.2.1", "alice", b"A" * 32)
    mallory = _owner(registry, "192.0.2.1", "mallory", b"M" * 32)

    refusal = registry.check_reuse(mallory, b"A" * 32, SCOPE_USER)

    assert refusal is not None
    assert "of another user (alice)" in refusal


def test_a_session_of_a_control_connection_not_logged_in_is_refused() -> None:
    registry = SessionRegistry()
    _owner(registry, "192.0.2.1", None, b"A" * 32)
    b = _owner(registry, "192.0.2.1", None, b"B" * 32)

    assert registry.check_reuse(b, b"A" * 32, SCOPE_USER) is not None


def test_a_session_of_a_connection_still_logging_in_waits_for_its_login() -> None:
    # rclone: a control connection gets its ticket at AUTH TLS, and another one's data
    # connection may offer it before that connection's login has completed.
    registry = SessionRegistry()
    newcomer = _owner(registry, "192.0.2.1", None, b"N" * 32)
    b = _owner(registry, "192.0.2.1", "alice", b"B" * 32)
    verdicts = _check_while(registry, b, b"N" * 32, lambda: registry.logged_in(newcomer, "alice"))

    assert verdicts == [None]


def test_a_session_recorded_while_the_check_waits_is_found() -> None:
    # The client can hold a control connection's ticket before the event loop records it.
    registry = SessionRegistry()
    b = _owner(registry, "192.0.2.1", "alice", b"B" * 32)
    newcomer = registry.new_owner("192.0.2.1")
    registry.logged_in(newcomer, "alice")
    verdicts = _check_while(registry, b, b"N" * 32, lambda: registry.issued(newcomer, b"N" * 32))

    assert verdicts == [None]


def test_a_session_of_a_connection_that_logs_in_as_another_user_is_refused() -> None:
    registry = SessionRegistry()
    newcomer = _owner(registry, "192.0.2.1", None, b"N" * 32)
    b = _owner(registry, "192.0.2.1", "alice", b"B" * 32)
    verdicts = _check_while(registry, b, b"N" * 32, lambda: registry.logged_in(newcomer, "mallory"))

    assert len(verdicts) == 1
    assert verdicts[0] is not None
    assert "of another user (mallory)" in verdicts[0]


def test_another_addresss_session_is_refused_and_named() -> None:
    registry = SessionRegistry()
    _owner(registry, "192.0.2.1", "alice", b"A" * 32)
    b = _owner(registry, "198.51.100.7", "alice", b"B" * 32)

    refusal = registry.check_reuse(b, b"A" * 32, SCOPE_USER)

    assert refusal is not None
    assert "from another address (192.0.2.1)" in refusal


def test_no_resumption_and_unknown_sessions_are_refused() -> None:
    registry = SessionRegistry()
    a = _owner(registry, "192.0.2.1", "alice", b"A" * 32)

    assert registry.check_reuse(a, None, SCOPE_USER) == "did not resume a TLS session"
    assert registry.check_reuse(a, b"X" * 32, SCOPE_USER) == (
        "resumed a session this instance has no record of"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_closed_connections_sessions_keep_its_user_until_they_expire() -> None:
    # rclone closes surplus control connections; the newest session in its cache may be one
    # of theirs.
    clock = Clock()
    registry = SessionRegistry(clock)
    a = _owner(registry, "192.0.2.1", "alice", b"A" * 32)
    b = _owner(registry, "192.0.2.1", "alice", b"B" * 32)
    mallory = _owner(registry, "192.0.2.1", "mallory", b"M" * 32)

    registry.closed(a)
    registry.logged_out(a)  # the session's logout after the close must not matter
    registry.issued(a, b"L" * 32)  # a download that ended after its control connection
    same_user = registry.check_reuse(b, b"A" * 32, SCOPE_USER)
    other_user = registry.check_reuse(mallory, b"A" * 32, SCOPE_USER)
    strict = registry.check_reuse(b, b"A" * 32, SCOPE_CONNECTION)
    clock.now += SESSION_SECONDS
    registry.closed(mallory)  # closing is when expired records are dropped
    expired = registry.check_reuse(b, b"A" * 32, SCOPE_USER)

    assert registry.owner_of(b"L" * 32) is None
    assert same_user is None
    assert other_user is not None
    assert strict is not None
    assert expired == "resumed a session this instance has no record of"


def test_closed_connections_on_record_are_bounded() -> None:
    registry = SessionRegistry(Clock())
    first = _owner(registry, "192.0.2.1", "alice", b"F" * 32)
    registry.closed(first)
    for i in range(CLOSED_KEPT):
        registry.closed(_owner(registry, "192.0.2.1", "alice", i.to_bytes(32, "big")))

    assert registry.owner_of(b"F" * 32) is None
    assert registry.owner_of((CLOSED_KEPT - 1).to_bytes(32, "big")) is not None


def test_the_handshake_session_outlives_many_download_tickets() -> None:
    registry = SessionRegistry()
    a = _owner(registry, "192.0.2.1", "alice", b"A" * 32)
    downloads = [bytes([i]) * 32 for i in range(1, IDS_PER_OWNER + 3)]
    for sid in downloads:
        registry.issued(a, sid)

    assert registry.check_reuse(a, b"A" * 32, SCOPE_CONNECTION) is None
    assert registry.check_reuse(a, downloads[-1], SCOPE_CONNECTION) is None
    # The oldest download tickets are dropped, so one control connection's record is bounded.
    assert registry.check_reuse(a, downloads[0], SCOPE_CONNECTION) is not None


def test_a_session_keeps_its_first_owner() -> None:
    # A TLS 1.2 session resumed by another control connection keeps its id; it must not
    # change hands when that connection records the session after a download.
    registry = SessionRegistry()
    a = _owner(registry, "192.0.2.1", "alice", b"A" * 32)
    b = _owner(registry, "192.0.2.1", "alice", b"B" * 32)

    registry.issued(b, b"A" * 32)

    assert registry.owner_of(b"A" * 32) is a


def test_a_control_connection_that_resumed_an_earlier_session_takes_it_over() -> None:
    # TLS 1.2: a control connection resuming an earlier connection's session keeps its id.
    registry = SessionRegistry()
    a = _owner(registry, "192.0.2.1", "alice", b"A" * 32)
    registry.closed(a)
    b = registry.new_owner("192.0.2.1")
    registry.issued(b, b"A" * 32, control=True)
    registry.logged_in(b, "alice")

    assert registry.check_reuse(b, b"A" * 32, SCOPE_CONNECTION) is None


@pytest.fixture
def config(tmp_path: Path) -> InstanceConfig:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["localhost"])
    return InstanceConfig(
        name="t",
        source=tmp_path / "t.toml",
        config_dir=tmp_path,
        ssl_enable=True,
        rsa_cert_file=cert,
        rsa_private_key_file=key,
    )


def test_the_context_is_shared_until_the_certificate_changes(config: InstanceConfig) -> None:
    tls = InstanceTls()
    first = tls.context(config)
    again = tls.context(config)
    write_self_signed(config.rsa_cert_file, config.rsa_private_key_file, ["renewed"])
    stat = os.stat(config.rsa_cert_file)
    # Make sure the change shows in the time stamp even on a coarse clock.
    os.utime(config.rsa_cert_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    renewed = tls.context(config)

    assert again is first
    assert renewed is not first
