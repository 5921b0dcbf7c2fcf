"""Tests for layering _shared.toml under instance files, and for check_paths across a directory:
which file a problem names, cross-key checks over both layers, and listeners that clash.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftpsup.config.check import check_paths
from ftpsup.config.load import instance_paths, load_instance
from ftpsup.errors import ConfigProblem
from tests.config_files import (
    OLD_TLS,
    default_account_exists,  # noqa: F401 (autouse)
    problems_of,
    write,
)


def test_tls_cross_key_problem_in_shared_names_the_shared_file(tmp_path: Path) -> None:
    shared = write(tmp_path, "_shared.toml", "ssl_tlsv1 = true\nvalidate_cert = true\n")
    path = write(tmp_path, "ftp.toml", "implicit_ssl = true\n")
    assert problems_of(path) == [
        ConfigProblem(str(shared), "ssl_tlsv1", f"TLS 1.0 {OLD_TLS}"),
        ConfigProblem(str(path), "implicit_ssl", "needs ssl_enable = true"),
        ConfigProblem(str(shared), "ca_certs_file", "required when validate_cert is true"),
    ]


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
