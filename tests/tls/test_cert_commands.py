"""Tests for the certificate commands an admin runs, `ftpsup cert` and `ftpsup check`, and for
what stops an instance at start-up (an expired certificate) and what only `ftpsup check`
reports.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest
from cryptography import x509

from ftpsup.config.schema import InstanceConfig
from ftpsup.tls.certs import EXPIRY_WARNING_DAYS, check_pair
from ftpsup.tls.contexts import tls_problems
from tests.ftpsup_cli import run_ftpsup
from tests.tls.cert_files import valid_for

ftpsup = run_ftpsup


# --- ftpsup cert and ftpsup check ---------------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A config directory with one explicit-FTPS instance whose cert and key live in tls/."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "_shared.toml").write_text(
        f'user_db_file = "{tmp_path / "users.toml"}"\n'
        f'state_dir = "{tmp_path / "run"}"\n'
        f'log_dir = "{tmp_path / "log"}"\n'
        'rsa_cert_file = "tls/cert.pem"\n'
        'rsa_private_key_file = "tls/key.pem"\n'
        # tmp_path is root's own (0700): no account but root could use it.
        "run_as_root = true\n"
    )
    (tmp_path / "users.toml").write_text("[users]\n")
    (etc / "ftps.toml").write_text(
        'listen_address = "127.0.0.1"\nlisten_port = 2121\nssl_enable = true\n'
    )
    return etc


def check(config_dir: Path) -> tuple[int, list[str]]:
    """The exit status, and the problems (stderr, without the count) or "ok" (stdout)."""
    result = ftpsup("check", str(config_dir))
    problems = [line for line in result.stderr.splitlines() if not line[:1].isdigit()]
    return result.returncode, problems + result.stdout.splitlines()


def test_ftpsup_cert_writes_the_configured_files(config_dir: Path) -> None:
    result = ftpsup("--config-dir", str(config_dir), "cert", "--name", "ftp.example.com")

    assert result.returncode == 0, result.stderr
    cert_file, key_file = config_dir / "tls" / "cert.pem", config_dir / "tls" / "key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["ftp.example.com"]
    assert check(config_dir) == (0, ["ok"])


def test_ftpsup_cert_keeps_existing_files_unless_forced(config_dir: Path) -> None:
    assert ftpsup("--config-dir", str(config_dir), "cert").returncode == 0
    first = (config_dir / "tls" / "cert.pem").read_bytes()

    kept = ftpsup("--config-dir", str(config_dir), "cert")
    unchanged = (config_dir / "tls" / "cert.pem").read_bytes()
    forced = ftpsup("--config-dir", str(config_dir), "cert", "--force")

    assert kept.returncode == 0
    assert "exists; kept" in kept.stderr
    assert unchanged == first
    assert forced.returncode == 0
    assert (config_dir / "tls" / "cert.pem").read_bytes() != first


def test_ftpsup_cert_without_a_tls_instance_says_so(config_dir: Path) -> None:
    (config_dir / "ftps.toml").write_text('listen_address = "127.0.0.1"\nlisten_port = 2121\n')

    result = ftpsup("--config-dir", str(config_dir), "cert")

    assert result.returncode == 1
    assert "no instance" in result.stderr
    assert "ssl_enable = true" in result.stderr
    assert not (config_dir / "tls").exists()


def test_ftpsup_check_reports_a_missing_certificate_once_naming_the_file_that_sets_it(
    config_dir: Path,
) -> None:
    # Two instances inherit the paths from _shared.toml: one problem each, blamed on it.
    (config_dir / "ftps6.toml").write_text(
        'listen_address = "::1"\nlisten_port = 2121\nssl_enable = true\n'
    )

    code, lines = check(config_dir)

    shared = config_dir / "_shared.toml"
    assert code == 1
    assert lines == [
        f"{shared}: rsa_cert_file: {config_dir / 'tls/cert.pem'} does not exist"
        " (create one with `ftpsup cert`)",
        f"{shared}: rsa_private_key_file: {config_dir / 'tls/key.pem'} does not exist"
        " (create one with `ftpsup cert`)",
    ]


def test_ftpsup_check_names_the_instance_file_that_sets_its_own_certificate(
    config_dir: Path,
) -> None:
    with (config_dir / "ftps.toml").open("a") as f:
        f.write('rsa_cert_file = "own/cert.pem"\n')

    code, lines = check(config_dir)

    assert code == 1
    assert (
        f"{config_dir / 'ftps.toml'}: rsa_cert_file: {config_dir / 'own/cert.pem'} does not exist"
        " (create one with `ftpsup cert`)"
    ) in lines


def test_ftpsup_check_reports_a_key_that_does_not_match(config_dir: Path) -> None:
    (config_dir / "tls").mkdir()
    valid_for(config_dir / "tls", 100, "mine")
    valid_for(config_dir / "tls", 100, "other")
    (config_dir / "tls" / "mine-cert.pem").rename(config_dir / "tls" / "cert.pem")
    (config_dir / "tls" / "other-key.pem").rename(config_dir / "tls" / "key.pem")

    code, lines = check(config_dir)

    assert code == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"{config_dir / '_shared.toml'}: rsa_private_key_file: {config_dir / 'tls/key.pem'}"
        " does not match rsa_cert_file"
    )


@pytest.mark.parametrize(
    ("days", "says", "code"),
    [(-1, "expired on", 1), (10, "warning: ", 0)],
    ids=["expired", "expiring"],
)
def test_ftpsup_check_reports_certificate_expiry(
    config_dir: Path, days: int, says: str, code: int
) -> None:
    # An expiring certificate still serves: a warning, which stops neither check nor start.
    (config_dir / "tls").mkdir()
    cert, key = valid_for(config_dir / "tls", days)
    cert.rename(config_dir / "tls" / "cert.pem")
    key.rename(config_dir / "tls" / "key.pem")

    status, lines = check(config_dir)

    assert status == code, lines
    assert lines[0].startswith(f"{config_dir / '_shared.toml'}: rsa_cert_file: "), lines
    assert says in lines[0]
    assert len(lines) == (1 if code else 2), lines  # a warning is followed by "ok"


@pytest.mark.parametrize(
    "ciphers", ["NO-SUCH-CIPHER", "TLS_AES_128_GCM_SHA256"], ids=["unknown", "tls13-suite-name"]
)
def test_ftpsup_check_reports_an_impossible_cipher_string(config_dir: Path, ciphers: str) -> None:
    assert ftpsup("--config-dir", str(config_dir), "cert").returncode == 0
    with (config_dir / "ftps.toml").open("a") as f:
        f.write(f'ssl_ciphers = "{ciphers}"\n')

    code, lines = check(config_dir)

    assert code == 1
    assert lines == [f"{config_dir / 'ftps.toml'}: ssl_ciphers: {ciphers!r} selects no cipher"]


def test_ftpsup_check_reports_insecure_protocol_versions_and_no_version(config_dir: Path) -> None:
    assert ftpsup("--config-dir", str(config_dir), "cert").returncode == 0
    with (config_dir / "ftps.toml").open("a") as f:
        f.write("ssl_tlsv1 = true\nssl_tlsv1_2 = false\nssl_tlsv1_3 = false\n")

    code, lines = check(config_dir)

    instance = config_dir / "ftps.toml"
    assert code == 1
    assert lines == [
        f"{instance}: ssl_tlsv1: TLS 1.0 is insecure and not supported;"
        " ftpsup offers TLS 1.2 and 1.3",
        f"{instance}: ssl_tlsv1_3: ssl_tlsv1_2 and ssl_tlsv1_3 are both false: no TLS",
    ]


# --- start-up: what stops an instance, and what only `ftpsup check` reports ------------------


def tls_instance(tmp_path: Path, cert_file: Path, key_file: Path) -> InstanceConfig:
    return InstanceConfig(
        name="ftps",
        source=tmp_path / "ftps.toml",
        config_dir=tmp_path,
        ssl_enable=True,
        rsa_cert_file=cert_file,
        rsa_private_key_file=key_file,
    )


def test_certificate_expiring_soon_does_not_stop_start_up(tmp_path: Path) -> None:
    config = tls_instance(tmp_path, *valid_for(tmp_path, 5))

    assert tls_problems(config) == []
    [warning] = tls_problems(config, warn_days=EXPIRY_WARNING_DAYS)
    assert warning.startswith(f"rsa_cert_file: {config.rsa_cert_file} expires on ")


def test_expired_certificate_stops_start_up(tmp_path: Path) -> None:
    config = tls_instance(tmp_path, *valid_for(tmp_path, -1))

    [problem] = tls_problems(config)

    assert problem.startswith(f"rsa_cert_file: {config.rsa_cert_file} expired on ")


def test_ftpsup_serve_refuses_an_expired_certificate_before_binding(config_dir: Path) -> None:
    (config_dir / "tls").mkdir()
    cert, key = valid_for(config_dir / "tls", -1)
    cert.rename(config_dir / "tls" / "cert.pem")
    key.rename(config_dir / "tls" / "key.pem")

    result = ftpsup("serve", str(config_dir / "ftps.toml"))

    assert result.returncode == 2
    assert f"rsa_cert_file: {config_dir / 'tls/cert.pem'} expired on " in result.stderr


def test_tls_check_also_reports_a_bad_cipher_list_beside_an_expiring_certificate(
    tmp_path: Path,
) -> None:
    cert_file, key_file = valid_for(tmp_path, 5)
    config = attrs.evolve(tls_instance(tmp_path, cert_file, key_file), ssl_ciphers="NOPE")

    problems = tls_problems(config, warn_days=EXPIRY_WARNING_DAYS)

    assert [p.split(":")[0] for p in problems] == ["ssl_ciphers", "rsa_cert_file"]


def test_shipped_configuration_needs_only_ftpsup_cert_to_serve_ftps(tmp_path: Path) -> None:
    # The Quick start: a fresh checkout has no certificate; `ftpsup cert` puts one where the
    # shipped _shared.toml points (var/tls/, beside instances.d), and the TLS checks pass.
    shipped = Path(__file__).resolve().parents[2] / "instances.d"
    config_dir = tmp_path / "checkout" / "instances.d"
    config_dir.mkdir(parents=True)
    for toml in shipped.glob("*.toml"):
        if toml.name != "users.toml":
            (config_dir / toml.name).write_bytes(toml.read_bytes())

    before = ftpsup("check", str(config_dir))
    made = ftpsup("--config-dir", str(config_dir), "cert")
    after = ftpsup("check", str(config_dir))

    tls_dir = tmp_path / "checkout" / "var" / "tls"
    assert f"{config_dir / '_shared.toml'}: rsa_cert_file: " in before.stderr
    assert made.returncode == 0, made.stderr
    assert (tls_dir / "ftpsup-key.pem").stat().st_mode & 0o777 == 0o600
    assert check_pair(tls_dir / "ftpsup-cert.pem", tls_dir / "ftpsup-key.pem") == []
    assert "rsa_" not in after.stderr, after.stderr
    if os.geteuid() == 0:  # ports 21 and 990 need root; otherwise check says so, rightly
        # ...and root needs the instances' account and a user store (`ftpsup setup`, `user add`).
        remaining = [
            line
            for line in after.stderr.splitlines()
            if "nopriv_user" not in line and "user_db_file" not in line and ":" in line
        ]
        assert not remaining, after.stderr
