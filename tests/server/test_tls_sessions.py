"""The session registry's reuse rule, and the instance's shared TLS context (no sockets)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftpsup.certs import write_self_signed
from ftpsup.config import InstanceConfig
from ftpsup.server.tls_sessions import (
    IDS_PER_OWNER,
    SCOPE_CONNECTION,
    SCOPE_USER,
    InstanceTls,
    SessionOwner,
    SessionRegistry,
)


def _owner(registry: SessionRegistry, address: str, user: str | None, sid: bytes) -> SessionOwner:
    owner = registry.new_owner(address)
    owner.user = user
    registry.issued(owner, sid)
    return owner


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
        "resumed a session of no open control connection"
    )


def test_forgotten_owners_sessions_no_longer_resume_and_take_no_new_ones() -> None:
    registry = SessionRegistry()
    a = _owner(registry, "192.0.2.1", "alice", b"A" * 32)
    b = _owner(registry, "192.0.2.1", "alice", b"B" * 32)

    registry.forget(a)
    registry.issued(a, b"L" * 32)  # a download that ended after its control connection

    assert registry.check_reuse(b, b"A" * 32, SCOPE_USER) is not None
    assert registry.owner_of(b"L" * 32) is None


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
