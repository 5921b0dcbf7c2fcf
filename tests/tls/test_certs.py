"""Certificates for FTPS: `write_self_signed`, `check_pair`, and the `ftpsup cert` and
`ftpsup check` commands an admin runs.

Certificates with chosen validity (expired, expiring soon) are made here with `cryptography`;
the CLI runs as a real `python -m ftpsup` subprocess with a timeout.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from ftpsup.cli.cert import validity_days
from ftpsup.tls.certs import EXPIRY_WARNING_DAYS, check_pair, write_self_signed
from tests.tls.cert_files import NOW, valid_for

TIMEOUT = 60


# --- write_self_signed ----------------------------------------------------------------------


def test_self_signed_pair_is_valid_for_its_names_and_the_key_is_private(tmp_path: Path) -> None:
    cert_file, key_file = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"

    write_self_signed(cert_file, key_file, ["ftp.example.com", "192.0.2.7", "::1"], days=30)

    assert key_file.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["ftp.example.com"]
    assert alt.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.7"),
        ipaddress.ip_address("::1"),
    ]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=30) <= lifetime <= datetime.timedelta(days=30, minutes=10)
    assert check_pair(cert_file, key_file) == []
    # The pair loads into a TLS server context as it is.
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)


def test_rewriting_the_key_keeps_it_private_from_the_first_byte(tmp_path: Path) -> None:
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    key_file.write_text("old, world-readable\n")
    key_file.chmod(0o644)

    write_self_signed(cert_file, key_file, ["localhost"])

    assert key_file.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in key_file.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- check_pair -----------------------------------------------------------------------------


def test_missing_cert_and_key_are_both_reported_with_the_fix(tmp_path: Path) -> None:
    cert_file, key_file = tmp_path / "no-cert.pem", tmp_path / "no-key.pem"

    assert check_pair(cert_file, key_file) == [
        f"rsa_cert_file: {cert_file} does not exist (create one with `ftpsup cert`)",
        f"rsa_private_key_file: {key_file} does not exist (create one with `ftpsup cert`)",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_key_is_reported(tmp_path: Path) -> None:
    cert_file, key_file = valid_for(tmp_path, 100)
    key_file.chmod(0)

    assert check_pair(cert_file, key_file) == [f"rsa_private_key_file: {key_file} is not readable"]


def test_key_that_is_a_directory_is_reported_not_raised(tmp_path: Path) -> None:
    cert_file, _ = valid_for(tmp_path, 100)
    (tmp_path / "keydir").mkdir()

    [problem] = check_pair(cert_file, tmp_path / "keydir")

    assert problem.startswith(f"rsa_private_key_file: {tmp_path / 'keydir'} does not match")


def test_key_of_another_certificate_is_reported(tmp_path: Path) -> None:
    cert_file, _ = valid_for(tmp_path, 100, "a")
    _, other_key = valid_for(tmp_path, 100, "b")

    [problem] = check_pair(cert_file, other_key)

    assert problem.startswith(
        f"rsa_private_key_file: {other_key} does not match rsa_cert_file or is not a key ("
    )


def test_file_that_is_not_a_certificate_is_reported(tmp_path: Path) -> None:
    _, key_file = valid_for(tmp_path, 100)

    [problem] = check_pair(key_file, key_file)

    assert problem.startswith(f"rsa_cert_file: {key_file} is not a PEM certificate (")


def test_expired_certificate_is_reported(tmp_path: Path) -> None:
    cert_file, key_file = valid_for(tmp_path, -3)
    expired = (NOW - datetime.timedelta(days=3)).strftime("%Y-%m-%d")

    assert check_pair(cert_file, key_file) == [f"rsa_cert_file: {cert_file} expired on {expired}"]


@pytest.mark.parametrize("days", [0.5, 7, EXPIRY_WARNING_DAYS - 0.5])
def test_certificate_expiring_within_14_days_is_reported(tmp_path: Path, days: float) -> None:
    cert_file, key_file = valid_for(tmp_path, days)
    ends = (NOW + datetime.timedelta(days=days)).strftime("%Y-%m-%d")

    assert check_pair(cert_file, key_file) == [
        f"rsa_cert_file: {cert_file} expires on {ends}, in under 14 days"
    ]


@pytest.mark.parametrize("days", [EXPIRY_WARNING_DAYS + 1, 90, 825])
def test_certificate_valid_for_more_than_14_days_is_fine(tmp_path: Path, days: int) -> None:
    cert_file, key_file = valid_for(tmp_path, days)

    assert check_pair(cert_file, key_file) == []


def test_expiry_is_judged_at_the_given_moment(tmp_path: Path) -> None:
    cert_file, key_file = valid_for(tmp_path, 100)

    assert check_pair(cert_file, key_file, now=NOW + datetime.timedelta(days=90)) != []
    assert check_pair(cert_file, key_file, now=NOW + datetime.timedelta(days=80)) == []


@pytest.mark.parametrize("days", [-5, 0, 36501, 3650000])
def test_write_self_signed_refuses_days_out_of_range(tmp_path: Path, days: int) -> None:
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    with pytest.raises(ValueError, match=r"out of range 1\.\.36500"):
        write_self_signed(cert_file, key_file, ["localhost"], days=days)
    assert not cert_file.exists()
    assert not key_file.exists()


@pytest.mark.parametrize(("text", "days"), [("1", 1), ("825", 825), ("36500", 36500)])
def test_validity_days_takes_ascii_digits_in_range(text: str, days: int) -> None:
    assert validity_days(text) == days


@pytest.mark.parametrize(
    "text", ["-5", "0", "36501", "3650000", "", "+5", "1e3", "\u0663", "9" * 40]
)
def test_validity_days_refuses_the_rest(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"1\.\.36500"):
        validity_days(text)
