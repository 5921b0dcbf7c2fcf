"""Tests for loading instance files: the shipped instances.d, defaults, relative paths, and
files that cannot be read or named as instances.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from ftpsup.config.check import check_paths
from ftpsup.config.load import instance_paths, load_instance
from ftpsup.errors import ConfigError, ConfigProblem
from tests.config_files import (
    OLD_TLS,
    REPO,
    default_account_exists,  # noqa: F401 (autouse)
    problems_of,
    write,
)

SHIPPED = REPO / "instances.d"


# --- the shipped files -----------------------------------------------------------------------


def _account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_shipped_directory_checks_clean() -> None:
    problems = check_paths([SHIPPED])
    if os.geteuid() == 0 and not _account_exists("ftpsup"):
        # Root drops to the default nopriv_user, which `ftpsup setup` creates: one problem,
        # reported where the setting belongs.
        assert [(p.file, p.key) for p in problems] == [
            (str(SHIPPED / "_shared.toml"), "nopriv_user")
        ]
        assert "create it with `ftpsup setup`" in problems[0].problem
    else:
        assert problems == []


def test_shipped_instance_files_are_the_two_stacks_and_their_implicit_examples() -> None:
    assert [p.name for p in instance_paths(SHIPPED)] == [
        "ipv4-implicit.toml",
        "ipv4.toml",
        "ipv6-implicit.toml",
        "ipv6.toml",
    ]


@pytest.mark.parametrize(
    ("name", "address", "ipv6"), [("ipv4", "0.0.0.0", False), ("ipv6", "::", True)]
)
def test_shipped_instance_mirrors_the_seed_vsftpd_conf(name: str, address: str, ipv6: bool) -> None:
    config = load_instance(SHIPPED / f"{name}.toml")
    assert (config.name, config.listen_address, config.is_ipv6) == (name, address, ipv6)
    assert config.listen_port == 21
    assert (config.write_enable, config.local_enable, config.dirmessage_enable) == (True,) * 3
    assert config.local_umask == 0o022
    assert not config.anonymous_enable
    assert (config.xferlog_enable, config.xferlog_std_format) == (True, True)
    assert config.ftpd_banner == "Welcome to example.com FTP service."
    assert (config.pasv_min_port, config.pasv_max_port) == (10080, 10100)


def test_shipped_shared_paths_stay_inside_the_checkout() -> None:
    config = load_instance(SHIPPED / "ipv4.toml")
    assert config.user_db_file == SHIPPED / "users.toml"
    assert config.state_dir == SHIPPED.parent / "var/run"
    assert config.log_dir == SHIPPED.parent / "var/log"
    assert config.xferlog_file == SHIPPED.parent / "var/log/ipv4/xferlog"


@pytest.mark.parametrize("name", ["ipv4", "ipv6"])
def test_shipped_instances_serve_forced_explicit_ftps_as_the_seed(name: str) -> None:
    config = load_instance(SHIPPED / f"{name}.toml")
    assert (config.ssl_enable, config.implicit_ssl) == (True, False)
    assert (config.force_local_logins_ssl, config.force_local_data_ssl) == (True, True)
    assert not config.allow_anon_ssl
    assert (config.ssl_tlsv1_2, config.ssl_tlsv1_3) == (True, True)
    assert not (config.ssl_sslv2)
    assert not (config.ssl_sslv3)
    assert not (config.ssl_tlsv1)
    assert not (config.ssl_tlsv1_1)
    assert config.ssl_ciphers == "HIGH"
    # The seed's require_ssl_reuse=NO is deliberately not carried over.
    assert config.require_ssl_reuse


def test_shipped_certificate_paths_point_into_the_checkouts_var_tls() -> None:
    for name in ("ipv4", "ipv6", "ipv4-implicit", "ipv6-implicit"):
        config = load_instance(SHIPPED / f"{name}.toml")
        assert config.rsa_cert_file == SHIPPED.parent / "var/tls/ftpsup-cert.pem"
        assert config.rsa_private_key_file == SHIPPED.parent / "var/tls/ftpsup-key.pem"


@pytest.mark.parametrize(("name", "address"), [("ipv4", "0.0.0.0"), ("ipv6", "::")])
def test_shipped_implicit_examples_listen_on_port_990_with_implicit_tls(
    name: str, address: str
) -> None:
    config = load_instance(SHIPPED / f"{name}-implicit.toml")
    assert (config.listen_address, config.listen_port) == (address, 990)
    assert (config.ssl_enable, config.implicit_ssl, config.require_ssl_reuse) == (True,) * 3
    assert (config.force_local_logins_ssl, config.force_local_data_ssl) == (True, True)


# --- defaults, _shared.toml and paths ---------------------------------------------------------


def test_empty_instance_file_gets_every_default(tmp_path: Path) -> None:
    config = load_instance(write(tmp_path, "ftp.toml", ""))
    assert (config.name, config.source, config.config_dir) == (
        "ftp",
        tmp_path / "ftp.toml",
        tmp_path,
    )
    assert (config.listen_address, config.listen_port, config.is_ipv6) == ("0.0.0.0", 21, False)
    assert (config.max_clients, config.max_per_ip, config.max_command_length) == (2000, 50, 4096)
    assert (config.login_timeout, config.per_ip_ipv6_prefix) == (60, 64)
    assert (config.max_pasv_per_ip, config.max_tls_handshakes_per_ip) == (10, 8)
    assert (config.local_umask, config.anon_umask, config.file_open_mode) == (0o077, 0o077, 0o666)
    assert (config.chroot_local_user, config.local_enable, config.write_enable) == (
        True,
        True,
        False,
    )
    assert config.anon_root is None
    assert config.message_file == ".message"
    assert config.user_db_file == tmp_path / "users.toml"
    assert config.state_dir == Path("/run/ftpsup")
    assert config.vsftpd_log_file == Path("/var/log/ftpsup/ftp/ftpsup.log")
    assert config.xferlog_file == Path("/var/log/ftpsup/ftp/xferlog")


def test_tls_keys_default_to_off_with_secure_settings(tmp_path: Path) -> None:
    config = load_instance(write(tmp_path, "ftp.toml", ""))
    assert (config.ssl_enable, config.implicit_ssl, config.allow_anon_ssl) == (False,) * 3
    # vsftpd's defaults: forced for local users once TLS is on, not for anonymous ones.
    assert (config.force_local_logins_ssl, config.force_local_data_ssl) == (True, True)
    assert (config.force_anon_logins_ssl, config.force_anon_data_ssl) == (False, False)
    assert (config.ssl_tlsv1_2, config.ssl_tlsv1_3) == (True, True)
    assert (config.ssl_sslv2, config.ssl_sslv3, config.ssl_tlsv1, config.ssl_tlsv1_1) == (
        False,
    ) * 4
    assert config.ssl_ciphers == "HIGH"
    assert config.rsa_cert_file == tmp_path / "tls" / "ftpsup-cert.pem"
    assert config.rsa_private_key_file == tmp_path / "tls" / "ftpsup-key.pem"
    assert config.ca_certs_file is None
    # A requested client certificate would have to verify against ca_certs_file: off.
    assert (config.ssl_request_cert, config.require_cert, config.validate_cert) == (False,) * 3
    assert (config.require_ssl_reuse, config.strict_ssl_read_eof) == (True, True)
    assert not config.strict_ssl_write_shutdown
    assert config.tls_handshake_timeout == 30


def test_tls_settings_load_with_paths_relative_to_their_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = write(
        tmp_path / "etc",
        "ftps.toml",
        "ssl_enable = true\nimplicit_ssl = true\nssl_tlsv1_2 = false\n"
        'ssl_ciphers = "ECDHE+AESGCM"\nrsa_private_key_file = "key.pem"\n'
        'ca_certs_file = "ca.pem"\nrequire_cert = true\nvalidate_cert = true\n'
        "ssl_sslv3 = false\nssl_tlsv1_1 = false\ntls_handshake_timeout = 5\n",
    )
    write(tmp_path / "etc", "_shared.toml", 'rsa_cert_file = "pki/cert.pem"\n')
    config = load_instance(path)
    assert (config.ssl_enable, config.implicit_ssl, config.ssl_tlsv1_2) == (True, True, False)
    assert config.ssl_ciphers == "ECDHE+AESGCM"
    assert config.rsa_cert_file == tmp_path / "etc" / "pki" / "cert.pem"
    assert config.rsa_private_key_file == tmp_path / "etc" / "key.pem"
    assert config.ca_certs_file == tmp_path / "etc" / "ca.pem"
    assert (config.require_cert, config.validate_cert) == (True, True)
    assert config.tls_handshake_timeout == 5


def test_relative_instance_path_gives_absolute_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "ftp.toml", "")
    monkeypatch.chdir(tmp_path)
    config = load_instance("ftp.toml")
    assert config.source == tmp_path / "ftp.toml"
    assert config.source.is_absolute()


def test_relative_paths_resolve_against_the_file_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path, "ftp.toml", 'anonymous_enable = true\nanon_root = "pub"\nxferlog_file = "x/log"\n'
    )
    monkeypatch.chdir("/")
    config = load_instance(tmp_path / "ftp.toml")
    assert config.anon_root == tmp_path / "pub"
    assert config.xferlog_file == tmp_path / "x" / "log"


@pytest.mark.parametrize(("text", "expected"), [("0o022", 0o022), ('"022"', 0o022), ('"0"', 0)])
def test_octal_keys_take_toml_octal_or_vsftpd_string(
    tmp_path: Path, text: str, expected: int
) -> None:
    config = load_instance(write(tmp_path, "ftp.toml", f"local_umask = {text}\n"))
    assert config.local_umask == expected


def test_ipv6_listen_address_makes_ipv6_instance(tmp_path: Path) -> None:
    config = load_instance(write(tmp_path, "v6.toml", 'listen_address = "2001:db8::21"\n'))
    assert config.is_ipv6


def test_resolvable_pasv_address_is_accepted_with_pasv_addr_resolve(tmp_path: Path) -> None:
    text = 'pasv_address = "ftp.example.com"\npasv_addr_resolve = true\n'
    assert load_instance(write(tmp_path, "ftp.toml", text)).pasv_address == "ftp.example.com"


FILE_PROBLEMS: list[tuple[str | bytes, str]] = [
    ("listen_port = \n", "invalid toml: invalid value (at line 1, column 15)"),
    ("a = 1\na = 2\n", "invalid toml: cannot overwrite a value (at line 2, column 6)"),
    (
        "\nanonymous_enable=NO\n",
        "invalid toml: invalid value (at line 2, column 18); use true or false",
    ),
    (
        "local_umask = 022\n",
        "invalid toml: expected newline or end of document after a statement"
        ' (at line 1, column 16); write octal as 0o022 or "022"',
    ),
    (b'ftpd_banner = "\xff"\n', "not valid utf-8 (byte 15)"),
]


@pytest.mark.parametrize(("content", "problem"), FILE_PROBLEMS)
def test_unparsable_file_reports_the_parser_position(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    path = write(tmp_path, "ftp.toml", content)
    assert problems_of(path) == [ConfigProblem(str(path), None, problem)]


def test_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "gone.toml"
    assert problems_of(path) == [ConfigProblem(str(path), None, "no such file")]


def test_directory_in_place_of_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "ftp.toml"
    path.mkdir()
    assert problems_of(path) == [ConfigProblem(str(path), None, "is a directory, not a file")]


def test_unreadable_file_reports_the_os_reason(tmp_path: Path) -> None:
    # A symlink loop cannot be read even by root, unlike a file with mode 000.
    path = tmp_path / "ftp.toml"
    path.symlink_to(path)
    problem = "cannot read: too many levels of symbolic links"
    assert problems_of(path) == [ConfigProblem(str(path), None, problem)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "ftp.toml", "")
    path.chmod(0)
    assert problems_of(path) == [ConfigProblem(str(path), None, "cannot read: permission denied")]


@pytest.mark.parametrize("name", ["My-FTP", "-ftp", "ftp.v4", "ftp space"])
def test_instance_name_must_match_the_pattern(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"{name}.toml", "")
    problem = f'instance name "{name}" must match [a-z0-9][a-z0-9_-]*'
    assert problems_of(path) == [ConfigProblem(str(path), None, problem)]


def test_file_not_ending_in_toml_is_not_an_instance(tmp_path: Path) -> None:
    path = write(tmp_path, "vsftpd.conf", "")
    problem = "instance files must be named <name>.toml"
    assert problems_of(path) == [ConfigProblem(str(path), None, problem)]


def test_config_error_lists_every_problem_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "ftp.toml", 'listen_port = 0\nwrite_enable = "YES"\nssl_sslv3 = true\n')
    with pytest.raises(ConfigError) as info:
        load_instance(path)
    assert str(info.value).splitlines() == [
        f"{path}: listen_port: 0 is out of range 1..65535",
        f'{path}: write_enable: use true or false, not "YES"',
        f"{path}: ssl_sslv3: SSLv3 {OLD_TLS}",
    ]
