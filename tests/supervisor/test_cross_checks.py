"""The checks `ftpsup check` and `start` add across instances and for this host (config/cross)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftpsup.config.check import check_paths
from ftpsup.config.load import load_instance
from ftpsup.errors import ConfigError, ConfigProblem
from tests.config_files import default_account_exists  # noqa: F401 (autouse)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    write(tmp_path / "_shared.toml", f'state_dir = "{tmp_path}/run"\nlog_dir = "{tmp_path}/log"\n')
    write(tmp_path / "users.toml", "[users]\n")
    return tmp_path


def test_overlapping_passive_ranges_that_differ_are_a_problem(etc: Path) -> None:
    write(etc / "a.toml", "listen_port = 2121\npasv_min_port = 40000\npasv_max_port = 40010\n")
    b = write(etc / "b.toml", "listen_port = 2122\npasv_min_port = 40005\npasv_max_port = 40020\n")
    assert check_paths([etc]) == [
        ConfigProblem(
            str(b),
            "pasv_min_port",
            '40005-40020 overlaps the passive range 40000-40010 of instance "a"; '
            "set one range in _shared.toml",
        )
    ]


@pytest.mark.parametrize(("lo", "hi"), [(40000, 40010), (40011, 40020)])
def test_the_same_range_or_separate_ranges_are_fine(etc: Path, lo: int, hi: int) -> None:
    write(etc / "a.toml", "listen_port = 2121\npasv_min_port = 40000\npasv_max_port = 40010\n")
    write(etc / "b.toml", f"listen_port = 2122\npasv_min_port = {lo}\npasv_max_port = {hi}\n")
    assert check_paths([etc]) == []


def test_instances_sharing_a_state_dir_must_share_nopriv_user(etc: Path) -> None:
    write(etc / "a.toml", 'listen_port = 2121\nnopriv_user = "nobody"\n')
    b = write(etc / "b.toml", "listen_port = 2122\n")
    problems = check_paths([etc])
    assert [(p.file, p.key) for p in problems] == [(str(b), "nopriv_user")]
    assert 'differs from instance "a" ("nobody")' in problems[0].problem


def test_unknown_nopriv_user_is_a_problem(etc: Path) -> None:
    a = write(etc / "a.toml", 'listen_port = 2121\nnopriv_user = "no-such-account-x"\n')
    problems = check_paths([etc])
    assert [(p.file, p.key) for p in problems] == [(str(a), "nopriv_user")]
    assert problems[0].problem.startswith('no account "no-such-account-x" on this host: ')
    assert "`ftpsup setup`" in problems[0].problem


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('nopriv_user = ""', "must name an account; to run the instances as root, set run_as_root"),
        ('nopriv_user = "root"', "root is not an unprivileged account; to run the instances as"),
    ],
)
def test_root_is_never_an_implicit_nopriv_user(etc: Path, text: str, problem: str) -> None:
    a = write(etc / "a.toml", f"listen_port = 2121\n{text}\n")
    problems = check_paths([etc])
    assert [(p.file, p.key) for p in problems] == [(str(a), "nopriv_user")]
    assert problems[0].problem.startswith(problem)


def test_run_as_root_is_the_explicit_opt_in_and_belongs_in_the_shared_file(etc: Path) -> None:
    a = write(etc / "a.toml", 'listen_port = 2121\nnopriv_user = "root"\nrun_as_root = true\n')
    assert [(p.file, p.key) for p in check_paths([etc])] == [(str(a), "run_as_root")]
    write(etc / "a.toml", 'listen_port = 2121\nnopriv_user = "root"\n')
    write(etc / "_shared.toml", "run_as_root = true\n")
    assert check_paths([etc]) == []


def test_nopriv_user_must_look_like_an_account_name(etc: Path) -> None:
    a = write(etc / "a.toml", 'nopriv_user = "root; rm"\n')
    with pytest.raises(ConfigError) as info:
        load_instance(a)
    assert [str(p) for p in info.value.problems] == [
        f'{a}: nopriv_user: "root; rm" is not an account name'
    ]


@pytest.mark.parametrize("key", ["startsecs", "startretries", "stopwaitsecs"])
def test_restart_policy_keys_belong_in_the_shared_file(etc: Path, key: str) -> None:
    a = write(etc / "a.toml", f"{key} = 2\n")
    with pytest.raises(ConfigError) as info:
        load_instance(a)
    assert [p.key for p in info.value.problems] == [key]
    write(etc / "_shared.toml", f"{key} = 2\n")
    write(a, "")
    assert getattr(load_instance(a), key) == 2


def test_a_log_path_that_cannot_be_written_is_a_problem(etc: Path) -> None:
    write(etc / "plain", "a file, not a directory")
    a = write(etc / "a.toml", 'vsftpd_log_file = "plain/a.log"\n')
    log = etc / "plain" / "a.log"
    assert check_paths([etc]) == [
        ConfigProblem(str(a), "vsftpd_log_file", f"{log} cannot be written by uid {os.geteuid()}")
    ]


@pytest.mark.skipif(
    subprocess.run(["which", "setpriv"], capture_output=True).returncode != 0,
    reason="needs setpriv (util-linux)",
)
def test_port_below_1024_without_the_privilege_says_what_to_do(etc: Path) -> None:
    # The instances' account is not this test's subject.
    a = write(etc / "a.toml", "listen_port = 21\n")
    write(etc / "_shared.toml", (etc / "_shared.toml").read_text() + "run_as_root = true\n")
    result = subprocess.run(
        ["setpriv", "--bounding-set=-net_bind_service", sys.executable, "-m", "ftpsup"]
        + ["check", str(etc)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[:-1] == [
        f"{a}: listen_port: port 21 needs root or CAP_NET_BIND_SERVICE, which this process "
        f"(uid {os.geteuid()}) lacks: start ftpsup as root, or use a port of 1024 or above"
    ]
