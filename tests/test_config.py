"""Tests for ftpsup.config: loading instance files, _shared.toml defaults, and every problem."""

from __future__ import annotations

import json
import os
import pwd
import re
import tempfile
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpsup.config.check import check_paths
from ftpsup.config.load import instance_paths, load_instance
from ftpsup.config.schema import KEY_KINDS, InstanceConfig
from ftpsup.errors import ConfigError, ConfigProblem

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "instances.d"
DOCS = REPO / "docs" / "configuration.md"
OLD_TLS = "is insecure and not supported; ftpsup offers TLS 1.2 and 1.3"


@pytest.fixture(autouse=True)
def default_account_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about other keys: the host has the default nopriv_user, "ftpsup".

    As root, check_paths requires that account (tests/test_accounts.py covers that); a fresh
    host, like the CI's, has not run `ftpsup setup`.
    """
    real = pwd.getpwnam

    def getpwnam(name: str) -> pwd.struct_passwd:
        try:
            return real(name)
        except KeyError:
            if name != "ftpsup":
                raise
            return pwd.struct_passwd((name, "x", 64999, 64999, "", "/nonexistent", "/bin/false"))

    monkeypatch.setattr("ftpsup.config.cross.pwd.getpwnam", getpwnam)


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_instance(path)
    return info.value.problems


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


def test_tls_cross_key_problem_in_shared_names_the_shared_file(tmp_path: Path) -> None:
    shared = write(tmp_path, "_shared.toml", "ssl_tlsv1 = true\nvalidate_cert = true\n")
    path = write(tmp_path, "ftp.toml", "implicit_ssl = true\n")
    assert problems_of(path) == [
        ConfigProblem(str(shared), "ssl_tlsv1", f"TLS 1.0 {OLD_TLS}"),
        ConfigProblem(str(path), "implicit_ssl", "needs ssl_enable = true"),
        ConfigProblem(str(shared), "ca_certs_file", "required when validate_cert is true"),
    ]


def test_relative_instance_path_gives_absolute_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "ftp.toml", "")
    monkeypatch.chdir(tmp_path)
    config = load_instance("ftp.toml")
    assert config.source == tmp_path / "ftp.toml"
    assert config.source.is_absolute()


def test_instance_file_overrides_shared_default(tmp_path: Path) -> None:
    write(tmp_path, "_shared.toml", "max_clients = 10\nmax_per_ip = 3\n")
    config = load_instance(write(tmp_path, "ftp.toml", "max_clients = 20\n"))
    assert (config.max_clients, config.max_per_ip) == (20, 3)


def test_shared_log_dir_moves_default_log_files(tmp_path: Path) -> None:
    write(tmp_path, "_shared.toml", 'log_dir = "logs"\nstate_dir = "/srv/state"\n')
    config = load_instance(write(tmp_path, "web.toml", ""))
    assert config.log_dir == tmp_path / "logs"
    assert config.vsftpd_log_file == tmp_path / "logs" / "web" / "ftpsup.log"
    assert config.state_dir == Path("/srv/state")


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


# --- one problem per case, with exact file, key and text --------------------------------------

KEY_PROBLEMS = [
    ("listen_port = 0", "listen_port", "0 is out of range 1..65535"),
    ("listen_port = 70000", "listen_port", "70000 is out of range 1..65535"),
    ('listen_port = "21"', "listen_port", 'expected an integer, not "21"'),
    ("listen_port = true", "listen_port", "expected an integer, not true"),
    ("ftp_data_port = 65536", "ftp_data_port", "65536 is out of range 1..65535"),
    ("max_clients = -1", "max_clients", "-1 is below the minimum of 0"),
    ("max_per_ip = 2147483648", "max_per_ip", "2147483648 is above the maximum of 2147483647"),
    ("max_command_length = 100", "max_command_length", "100 is out of range 512..65536"),
    ("pasv_min_port = 80", "pasv_min_port", "80 is out of range 1024..65535"),
    ("pasv_max_port = 1.5", "pasv_max_port", "expected an integer, not 1.5"),
    ("idle_session_timeout = 0", "idle_session_timeout", "0 is below the minimum of 1"),
    ("data_connection_timeout = -5", "data_connection_timeout", "-5 is below the minimum of 1"),
    ("accept_timeout = 0", "accept_timeout", "0 is below the minimum of 1"),
    ("connect_timeout = 0", "connect_timeout", "0 is below the minimum of 1"),
    ("max_login_fails = 0", "max_login_fails", "0 is below the minimum of 1"),
    ("delay_failed_login = -1", "delay_failed_login", "-1 is below the minimum of 0"),
    ('write_enable = "YES"', "write_enable", 'use true or false, not "YES"'),
    ('hide_ids = "NO"', "hide_ids", 'use true or false, not "NO"'),
    ("pasv_enable = 1", "pasv_enable", "use true or false, not 1"),
    ("xferlog_enable = {}", "xferlog_enable", "use true or false, not a table"),
    ("listen_address = 1", "listen_address", "expected a string, not 1"),
    (
        'listen_address = "localhost"',
        "listen_address",
        '"localhost" is not a numeric ipv4 or ipv6 address',
    ),
    (
        'listen_address = "1.2.3.256"',
        "listen_address",
        '"1.2.3.256" is not a numeric ipv4 or ipv6 address',
    ),
    ('ssl_reuse_scope = "session"', "ssl_reuse_scope", '"session" is not "user" or "connection"'),
    ("ssl_reuse_scope = true", "ssl_reuse_scope", "expected a string, not true"),
    ('local_umask = "089"', "local_umask", '"089" is not an octal number'),
    ('local_umask = "0o22"', "local_umask", '"0o22" is not an octal number'),
    ("local_umask = 0o1000", "local_umask", "1000 (octal) is out of range 000..777"),
    ('anon_umask = "1777"', "anon_umask", "1777 (octal) is out of range 000..777"),
    ("anon_umask = -1", "anon_umask", "-1 (octal) is out of range 000..777"),
    (
        "file_open_mode = 1.5",
        "file_open_mode",
        'expected an octal number such as 0o022 or "022", not 1.5',
    ),
    (
        "file_open_mode = true",
        "file_open_mode",
        'expected an octal number such as 0o022 or "022", not true',
    ),
    ("ftpd_banner = 42", "ftpd_banner", "expected a string, not 42"),
    ('ftpd_banner = "hi\\r\\n230 ok"', "ftpd_banner", "contains a control character"),
    ('message_file = "../x"', "message_file", '"../x" must be a file name, not a path'),
    ('xferlog_file = ""', "xferlog_file", "must not be empty"),
    ("anon_root = []", "anon_root", "expected a string, not an array"),
    ("vsftpd_log_file = 1979-05-27", "vsftpd_log_file", "expected a string, not a date or time"),
    (
        'pasv_address = "ftp.example.com"',
        "pasv_address",
        '"ftp.example.com" is not a numeric ip address;'
        " set pasv_addr_resolve = true to use a host name",
    ),
    (
        'pasv_address = "2001:db8::1"',
        "pasv_address",
        '"2001:db8::1" is an ipv6 address; PASV replies carry only ipv4',
    ),
    (
        'pasv_address = "bad host"\npasv_addr_resolve = true',
        "pasv_address",
        '"bad host" is not a valid host name',
    ),
    ("pasv_addr_resolve = true", "pasv_addr_resolve", "true needs a host name in pasv_address"),
    (
        "pasv_min_port = 10100\npasv_max_port = 10080",
        "pasv_min_port",
        "10100 is greater than pasv_max_port (10080)",
    ),
    ("pasv_max_port = 10000", "pasv_max_port", "10000 is less than pasv_min_port (10080)"),
    ("anonymous_enable = true", "anon_root", "required when anonymous_enable is true"),
    (
        "chroot_local_user = false",
        "chroot_local_user",
        "ftpsup always confines users to their home; set true or remove it",
    ),
    (
        "port_enable = false\npasv_enable = false",
        "pasv_enable",
        "pasv_enable and port_enable are both false: no data connections",
    ),
    (
        'user_db_file = "u.toml"',
        "user_db_file",
        "only allowed in _shared.toml, as one setting for all instances",
    ),
    (
        'state_dir = "/tmp"',
        "state_dir",
        "only allowed in _shared.toml, as one setting for all instances",
    ),
    (
        'log_dir = "/tmp"',
        "log_dir",
        "only allowed in _shared.toml, as one setting for all instances",
    ),
    ("pasv_min_prot = 10080", "pasv_min_prot", 'unknown key; did you mean "pasv_min_port"?'),
    (
        "idle_session_timout = 60",
        "idle_session_timout",
        'unknown key; did you mean "idle_session_timeout"?',
    ),
    ('colour = "blue"', "colour", "unknown key"),
    ("[pasv]\nmin_port = 1", "pasv", "unknown key"),
    ("ssl_sslv2 = true", "ssl_sslv2", f"SSLv2 {OLD_TLS}"),
    ("ssl_sslv3 = true", "ssl_sslv3", f"SSLv3 {OLD_TLS}"),
    ("ssl_tlsv1 = true", "ssl_tlsv1", f"TLS 1.0 {OLD_TLS}"),
    ("ssl_tlsv1_1 = true", "ssl_tlsv1_1", f"TLS 1.1 {OLD_TLS}"),
    (
        "ssl_tlsv1_2 = false\nssl_tlsv1_3 = false",
        "ssl_tlsv1_3",
        "ssl_tlsv1_2 and ssl_tlsv1_3 are both false: no TLS",
    ),
    ("implicit_ssl = true", "implicit_ssl", "needs ssl_enable = true"),
    ("require_cert = true", "ca_certs_file", "required when require_cert is true"),
    ("validate_cert = true", "ca_certs_file", "required when validate_cert is true"),
    ('ssl_enable = "YES"', "ssl_enable", 'use true or false, not "YES"'),
    ("ssl_ciphers = 3", "ssl_ciphers", "expected a string, not 3"),
    ('rsa_cert_file = ""', "rsa_cert_file", "must not be empty"),
    ("tls_handshake_timeout = 0", "tls_handshake_timeout", "0 is out of range 1..3600"),
    ("login_timeout = 0", "login_timeout", "0 is out of range 1..3600"),
    ("login_timeout = 3601", "login_timeout", "3601 is out of range 1..3600"),
    ('login_timeout = "30s"', "login_timeout", 'expected an integer, not "30s"'),
    ("per_ip_ipv6_prefix = 31", "per_ip_ipv6_prefix", "31 is out of range 32..128"),
    ("per_ip_ipv6_prefix = 129", "per_ip_ipv6_prefix", "129 is out of range 32..128"),
    ("max_pasv_per_ip = -1", "max_pasv_per_ip", "-1 is below the minimum of 0"),
    ("max_pasv_per_ip = true", "max_pasv_per_ip", "expected an integer, not true"),
    ("max_tls_handshakes_per_ip = -1", "max_tls_handshakes_per_ip", "-1 is below the minimum of 0"),
    (
        "max_tls_handshakes_per_ip = 2.5",
        "max_tls_handshakes_per_ip",
        "expected an integer, not 2.5",
    ),
    (
        "ssl_tlsv12 = true",
        "ssl_tlsv12",
        "vsftpd 3.0.5 spelling; ftpsup uses ssl_tlsv1_2 (as vsftpd's manual does)",
    ),
    (
        "ssl_tlsv11 = true",
        "ssl_tlsv11",
        "TLS 1.1 is insecure and not supported; ftpsup offers TLS 1.2 and 1.3",
    ),
    (
        'dsa_cert_file = "/etc/c.pem"',
        "dsa_cert_file",
        "DSA certificates are not supported; use rsa_cert_file (RSA or ECDSA)",
    ),
    (
        "ssl_frobnicate = true",
        "ssl_frobnicate",
        "unknown TLS key; see the TLS keys in docs/configuration.md",
    ),
    (
        "tcp_wrappers = true",
        "tcp_wrappers",
        "tcp wrappers are not supported; filter with the firewall",
    ),
    ("listen = true", "listen", "not needed: every <name>.toml is a standalone instance"),
    (
        "listen_ipv6 = true",
        "listen_ipv6",
        'not needed: listen_address = "::" makes an ipv6 instance',
    ),
    (
        'pam_service_name = "vsftpd"',
        "pam_service_name",
        "ftpsup checks passwords against its user store, not pam",
    ),
    (
        "userlist_enable = true",
        "userlist_enable",
        "only users in the user store (user_db_file) can log in",
    ),
    (
        "chroot_list_enable = true",
        "chroot_list_enable",
        "ftpsup confines every user to their home, with no exceptions",
    ),
]


@pytest.mark.parametrize(("text", "key", "problem"), KEY_PROBLEMS)
def test_bad_key_reports_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, "ftp.toml", text + "\n")
    assert problems_of(path) == [ConfigProblem(str(path), key, problem)]


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


def test_bad_key_is_not_compared_with_its_partner(tmp_path: Path) -> None:
    path = write(tmp_path, "ftp.toml", 'pasv_min_port = "high"\npasv_max_port = 2000\n')
    assert problems_of(path) == [
        ConfigProblem(str(path), "pasv_min_port", 'expected an integer, not "high"')
    ]


# --- _shared.toml problems name _shared.toml --------------------------------------------------


def test_problem_in_shared_names_the_shared_file(tmp_path: Path) -> None:
    shared = write(tmp_path, "_shared.toml", 'max_clients = "many"\n')
    path = write(tmp_path, "ftp.toml", "listen_port = 0\n")
    assert problems_of(path) == [
        ConfigProblem(str(shared), "max_clients", 'expected an integer, not "many"'),
        ConfigProblem(str(path), "listen_port", "0 is out of range 1..65535"),
    ]


def test_unparsable_shared_file_stops_every_instance(tmp_path: Path) -> None:
    shared = write(tmp_path, "_shared.toml", "pasv_min_port = \n")
    path = write(tmp_path, "ftp.toml", "")
    problem = "invalid toml: invalid value (at line 1, column 17)"
    assert problems_of(path) == [ConfigProblem(str(shared), None, problem)]


def test_cross_key_problem_blames_the_file_that_set_the_key(tmp_path: Path) -> None:
    shared = write(tmp_path, "_shared.toml", "anonymous_enable = true\npasv_min_port = 10100\n")
    path = write(tmp_path, "ftp.toml", "pasv_max_port = 10090\n")
    assert problems_of(path) == [
        ConfigProblem(str(shared), "pasv_min_port", "10100 is greater than pasv_max_port (10090)"),
        ConfigProblem(str(shared), "anon_root", "required when anonymous_enable is true"),
    ]


def test_anon_root_in_instance_satisfies_shared_anonymous_enable(tmp_path: Path) -> None:
    write(tmp_path, "_shared.toml", "anonymous_enable = true\n")
    config = load_instance(write(tmp_path, "ftp.toml", 'anon_root = "/srv/pub"\n'))
    assert config.anonymous_enable
    assert config.anon_root == Path("/srv/pub")


def test_valid_instance_value_overriding_bad_shared_value_is_still_cross_checked(
    tmp_path: Path,
) -> None:
    shared = write(tmp_path, "_shared.toml", 'pasv_min_port = "low"\n')
    path = write(tmp_path, "ftp.toml", "pasv_min_port = 10200\n")
    assert problems_of(path) == [
        ConfigProblem(str(shared), "pasv_min_port", 'expected an integer, not "low"'),
        ConfigProblem(str(path), "pasv_min_port", "10200 is greater than pasv_max_port (10100)"),
    ]


# --- check_paths ------------------------------------------------------------------------------


def test_check_paths_reports_problems_of_every_file_at_once(tmp_path: Path) -> None:
    shared = write(tmp_path, "_shared.toml", "pasv_min_port = 1\n")
    a = write(tmp_path, "a.toml", "listen_port = 0\nbogus = 1\n")
    b = write(tmp_path, "b.toml", 'listen_address = "::"\nhide_ids = "YES"\n')
    assert check_paths([tmp_path]) == [
        ConfigProblem(str(shared), "pasv_min_port", "1 is out of range 1024..65535"),
        ConfigProblem(str(a), "listen_port", "0 is out of range 1..65535"),
        ConfigProblem(str(a), "bogus", "unknown key"),
        ConfigProblem(str(b), "hide_ids", 'use true or false, not "YES"'),
    ]


def test_check_paths_reports_bad_per_address_limits_of_shared_and_instance_files(
    tmp_path: Path,
) -> None:
    shared = write(tmp_path, "_shared.toml", "max_pasv_per_ip = -3\nper_ip_ipv6_prefix = 8\n")
    a = write(tmp_path, "a.toml", "login_timeout = 0\nmax_tls_handshakes_per_ip = -1\n")
    problems = [str(problem) for problem in check_paths([tmp_path]) if problem.key]
    assert problems == [
        f"{shared}: max_pasv_per_ip: -3 is below the minimum of 0",
        f"{shared}: per_ip_ipv6_prefix: 8 is out of range 32..128",
        f"{a}: login_timeout: 0 is out of range 1..3600",
        f"{a}: max_tls_handshakes_per_ip: -1 is below the minimum of 0",
    ]


def test_per_address_limits_load_from_shared_and_instance_files(tmp_path: Path) -> None:
    write(tmp_path, "_shared.toml", "max_pasv_per_ip = 4\nper_ip_ipv6_prefix = 56\n")
    path = write(tmp_path, "ftp.toml", "login_timeout = 5\nmax_tls_handshakes_per_ip = 0\n")
    config = load_instance(path)
    assert (config.max_pasv_per_ip, config.per_ip_ipv6_prefix) == (4, 56)
    assert (config.login_timeout, config.max_tls_handshakes_per_ip) == (5, 0)


def test_check_paths_reports_each_problem_once(tmp_path: Path) -> None:
    write(tmp_path, "_shared.toml", "bogus = 1\n")
    a = write(tmp_path, "a.toml", "")
    assert check_paths([tmp_path, a, tmp_path / "_shared.toml"]) == check_paths([tmp_path])
    assert len(check_paths([tmp_path])) == 1


def test_check_paths_on_instance_file_reads_its_shared_file(tmp_path: Path) -> None:
    shared = write(tmp_path, "_shared.toml", "max_clients = -2\n")
    path = write(tmp_path, "a.toml", "")
    assert check_paths([path]) == [
        ConfigProblem(str(shared), "max_clients", "-2 is below the minimum of 0")
    ]


def test_check_paths_reports_two_instances_on_one_address_and_port(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'listen_address = "0.0.0.0"\n')
    b = write(tmp_path, "b.toml", 'listen_address = "0.0.0.0"\n')
    problem = '0.0.0.0 port 21 is also used by instance "a"'
    assert check_paths([tmp_path]) == [ConfigProblem(str(b), "listen_address", problem)]


def test_check_paths_reports_wildcard_overlapping_a_specific_address(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'listen_address = "::"\nlisten_port = 2121\n')
    b = write(tmp_path, "b.toml", 'listen_address = "::1"\nlisten_port = 2121\n')
    problem = '::1 port 2121 overlaps instance "a" on ::'
    assert check_paths([tmp_path]) == [ConfigProblem(str(b), "listen_address", problem)]


def test_shared_listen_port_clash_names_the_instance_address_file(tmp_path: Path) -> None:
    write(tmp_path, "_shared.toml", "listen_port = 2121\n")
    write(tmp_path, "a.toml", "")
    b = write(tmp_path, "b.toml", "")
    problem = '0.0.0.0 port 2121 is also used by instance "a"'
    assert check_paths([tmp_path]) == [ConfigProblem(str(b), "listen_address", problem)]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('listen_address = "0.0.0.0"', 'listen_address = "::"'),
        ("listen_port = 21", "listen_port = 2121"),
        ('listen_address = "10.0.0.1"', 'listen_address = "10.0.0.2"'),
    ],
)
def test_check_paths_accepts_instances_that_can_bind_together(
    tmp_path: Path, first: str, second: str
) -> None:
    write(tmp_path, "a.toml", first + "\n")
    write(tmp_path, "b.toml", second + "\n")
    assert check_paths([tmp_path]) == []


def test_check_paths_compares_listeners_only_within_one_directory(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    write(tmp_path / "one", "a.toml", "")
    write(tmp_path / "two", "a.toml", "")
    assert check_paths([tmp_path / "one", tmp_path / "two"]) == []


def test_check_paths_reports_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere"
    assert check_paths([path]) == [ConfigProblem(str(path), None, "no such file")]


def test_check_paths_reports_directory_without_instances(tmp_path: Path) -> None:
    write(tmp_path, "_shared.toml", "")
    assert check_paths([tmp_path]) == [
        ConfigProblem(str(tmp_path), None, "no instance files in directory")
    ]


def test_check_paths_accepts_string_paths(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "")
    assert check_paths([str(tmp_path)]) == []


def test_instance_paths_lists_sorted_instances_only(tmp_path: Path) -> None:
    for name in [
        "b.toml",
        "a.toml",
        "_shared.toml",
        "_old.toml",
        ".a.toml.swp",
        ".hidden.toml",
        "x.conf",
    ]:
        write(tmp_path, name, "")
    (tmp_path / "dir.toml").mkdir()
    assert instance_paths(tmp_path) == [tmp_path / "a.toml", tmp_path / "b.toml"]


def test_instance_paths_never_lists_users_toml_even_with_the_store_elsewhere(
    tmp_path: Path,
) -> None:
    # A leftover default store beside the instances was read as an instance named "users".
    write(tmp_path, "_shared.toml", 'user_db_file = "/var/lib/ftpsup/users.toml"\n')
    write(tmp_path, "users.toml", "[users]\n")
    write(tmp_path, "a.toml", "")
    assert instance_paths(tmp_path) == [tmp_path / "a.toml"]


def test_listen_address_refuses_an_ipv4_mapped_ipv6_address(tmp_path: Path) -> None:
    path = write(tmp_path, "a.toml", 'listen_address = "::ffff:192.0.2.1"\n')
    assert problems_of(path) == [
        ConfigProblem(
            str(path),
            "listen_address",
            '"::ffff:192.0.2.1" is an ipv4-mapped ipv6 address; use "192.0.2.1"',
        )
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("local_umask = 22", '22 is decimal, not octal; did you mean "022"?'),
        ("local_umask = 77", '77 is decimal, not octal; did you mean "077"?'),
        (
            "local_umask = 18",
            'TOML reads this as 18 (decimal), not octal; write it as "022" or 0o022',
        ),
        (
            "local_umask = 0x12",
            'TOML reads this as 18 (decimal), not octal; write it as "022" or 0o022',
        ),
    ],
)
def test_octal_key_written_as_a_decimal_integer_is_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, "a.toml", text + "\n")
    assert problems_of(path) == [ConfigProblem(str(path), "local_umask", problem)]


@pytest.mark.parametrize("text", ["local_umask = 0", "local_umask = 7", "local_umask = 0o022"])
def test_octal_key_accepts_integers_whose_readings_agree_and_toml_octal(
    tmp_path: Path, text: str
) -> None:
    value = int(text.split("= ")[1], 0)
    assert load_instance(write(tmp_path, "a.toml", text + "\n")).local_umask == value


# --- type checks over many values -------------------------------------------------------------

BOOL_KEYS = sorted(k for k, kind in KEY_KINDS.items() if kind == "bool")
INT_KEYS = sorted(k for k, kind in KEY_KINDS.items() if kind == "int")
OCTAL_KEYS = sorted(k for k, kind in KEY_KINDS.items() if kind == "octal")
NOT_BOOL = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=40))


def load_one(key: str, value: object) -> InstanceConfig | list[tuple[str | None, str]]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ftp.toml"
        path.write_text(tomli_w.dumps({key: value}))
        try:
            return load_instance(path)
        except ConfigError as exc:
            return [(p.key, p.problem) for p in exc.problems]


def shown(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(BOOL_KEYS), NOT_BOOL)
def test_bool_keys_accept_only_toml_booleans(key: str, value: object) -> None:
    assert load_one(key, value) == [(key, f"use true or false, not {shown(value)}")]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(INT_KEYS), st.one_of(st.booleans(), st.text(max_size=40)))
def test_int_keys_reject_booleans_and_strings(key: str, value: object) -> None:
    text = ("true" if value else "false") if isinstance(value, bool) else shown(value)
    assert load_one(key, value) == [(key, f"expected an integer, not {text}")]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(OCTAL_KEYS), st.integers(0, 0o777), st.booleans())
def test_octal_keys_read_toml_octal_and_vsftpd_strings_alike(
    key: str, mode: int, as_string: bool
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ftp.toml"
        path.write_text(f'{key} = "{mode:03o}"\n' if as_string else f"{key} = 0o{mode:o}\n")
        config = load_instance(path)
    assert getattr(config, key) == mode


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(OCTAL_KEYS), st.integers(8, 0o777))
def test_octal_keys_refuse_a_decimal_integer_above_7(key: str, value: int) -> None:
    # tomli_w writes decimal: `local_umask = 22` must never become the umask 0o026.
    result = load_one(key, value)
    assert isinstance(result, list)
    [(problem_key, problem)] = result
    assert problem_key == key
    assert "not octal" in problem


@settings(max_examples=60, deadline=None)
@given(st.integers(-(2**40), 2**40))
def test_listen_port_accepts_exactly_1_to_65535(port: int) -> None:
    result = load_one("listen_port", port)
    if 1 <= port <= 65535:
        assert isinstance(result, InstanceConfig)
        assert result.listen_port == port
    else:
        assert result == [("listen_port", f"{port} is out of range 1..65535")]


# --- the documentation covers every key -------------------------------------------------------


def test_docs_key_tables_list_exactly_the_configuration_keys() -> None:
    section = DOCS.read_text().split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.MULTILINE)
    assert sorted(documented) == sorted(KEY_KINDS)
