"""Tests for the values of ftpsup's config keys: each bad value's `file: key: problem`, the
types of keys (bools, ints, octal modes, ports, addresses), and the docs' key tables matching
the schema.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpsup.config.load import load_instance
from ftpsup.config.schema import KEY_KINDS, InstanceConfig
from ftpsup.errors import ConfigError, ConfigProblem
from tests.config_files import (
    OLD_TLS,
    REPO,
    default_account_exists,  # noqa: F401 (autouse)
    problems_of,
    write,
)

DOCS = REPO / "docs" / "configuration.md"


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
