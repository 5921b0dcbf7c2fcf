"""Tests for ftpsup.tls.contexts: the server context built from an instance's TLS keys."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ftpsup.config.schema import InstanceConfig
from ftpsup.tls.certs import write_self_signed
from ftpsup.tls.contexts import make_context
from tests.configs import minimal_config


def tls_config(tmp_path: Path, **values: object) -> InstanceConfig:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if not cert.exists():
        write_self_signed(cert, key, ["localhost"])
    tls: dict[str, object] = {
        "ssl_enable": True,
        "rsa_cert_file": cert,
        "rsa_private_key_file": key,
    }
    return minimal_config(tmp_path, **{**tls, **values})


@pytest.mark.parametrize(("strict", "ignored"), [(True, False), (False, True)])
def test_strict_ssl_read_eof_decides_whether_the_context_ignores_a_missing_close_notify(
    tmp_path: Path, strict: bool, ignored: bool
) -> None:
    # Not left to the interpreter: CPython up to 3.11.2 (Debian 12's python3) sets
    # OP_IGNORE_UNEXPECTED_EOF on every new context, later versions do not.
    ctx = make_context(tls_config(tmp_path, strict_ssl_read_eof=strict))

    assert bool(ctx.options & ssl.OP_IGNORE_UNEXPECTED_EOF) is ignored


def test_the_read_eof_rule_changes_no_other_option(tmp_path: Path) -> None:
    strict = make_context(tls_config(tmp_path, strict_ssl_read_eof=True))
    lenient = make_context(tls_config(tmp_path, strict_ssl_read_eof=False))

    assert strict.options ^ lenient.options == ssl.OP_IGNORE_UNEXPECTED_EOF
    assert strict.options & ssl.OP_NO_COMPRESSION
