"""Helpers of the certificate tests: writing a certificate and key with a chosen validity."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)


def make_cert(cert_file: Path, key_file: Path, *, not_before: datetime.datetime,
              not_after: datetime.datetime) -> None:  # fmt: skip
    """A self-signed ECDSA certificate valid from `not_before` to `not_after`, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ftp.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def valid_for(tmp_path: Path, days: float, stem: str = "c") -> tuple[Path, Path]:
    cert, key = tmp_path / f"{stem}-cert.pem", tmp_path / f"{stem}-key.pem"
    make_cert(
        cert,
        key,
        not_before=NOW - datetime.timedelta(days=400),
        not_after=NOW + datetime.timedelta(days=days),
    )
    return cert, key
