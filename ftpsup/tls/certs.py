"""Certificates for FTPS: write a self-signed pair, and check the files an instance names.

Rules:
- The private key is written with mode 0600 from the start (never world-readable, even
  briefly), and an existing file is only replaced when asked.
- Checks report problems as "key: problem" text for `ftpsup check`; they never raise for a
  bad file.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ftpsup.tls.validity import MAX_DAYS, MIN_DAYS

EXPIRY_WARNING_DAYS = 14


def host_names() -> list[str]:
    """Names and addresses this host is known by, for a self-signed certificate."""
    names = ["localhost", socket.gethostname(), socket.getfqdn(), "127.0.0.1", "::1"]
    return list(dict.fromkeys(n for n in names if n))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_self_signed(
    cert_file: Path, key_file: Path, names: Iterable[str], *, days: int = 825
) -> None:
    """Write a self-signed RSA 2048 certificate for `names` and its key (0600).

    Raises:
        ValueError: `days` is outside MIN_DAYS..MAX_DAYS.
    """
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days: {days} is out of range {MIN_DAYS}..{MAX_DAYS}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = list(names)
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def check_pair(
    cert_file: Path,
    key_file: Path,
    *,
    now: datetime.datetime | None = None,
    warn_days: int = EXPIRY_WARNING_DAYS,
) -> list[str]:
    """Problems with a certificate and key pair, as "key: problem" strings.

    Args:
        cert_file: The certificate (PEM).
        key_file: Its private key (PEM).
        now: The moment expiry is judged at (default: now).
        warn_days: Also report a certificate that expires within this many days; 0: only an
            expired one.
    """
    problems: list[str] = []
    for key, path in (("rsa_cert_file", cert_file), ("rsa_private_key_file", key_file)):
        if not path.exists():
            problems.append(f"{key}: {path} does not exist (create one with `ftpsup cert`)")
        elif not os.access(path, os.R_OK):
            problems.append(f"{key}: {path} is not readable")
    if problems:
        return problems
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (ValueError, OSError) as exc:
        return [f"rsa_cert_file: {cert_file} is not a PEM certificate ({exc})"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    except OSError as exc:  # ssl.SSLError, or a key path that cannot be read (a directory)
        problems.append(
            f"rsa_private_key_file: {key_file} does not match rsa_cert_file or is not a key "
            f"({getattr(exc, 'reason', None) or exc})"
        )
    moment = now or datetime.datetime.now(datetime.UTC)
    expires = cert.not_valid_after_utc
    if expires <= moment:
        problems.append(f"rsa_cert_file: {cert_file} expired on {expires:%Y-%m-%d}")
    elif expires - moment < datetime.timedelta(days=warn_days):
        problems.append(
            f"rsa_cert_file: {cert_file} expires on {expires:%Y-%m-%d}, in under {warn_days} days"
        )
    return problems
