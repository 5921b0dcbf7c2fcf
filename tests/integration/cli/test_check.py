"""`ftpsup check` as an admin runs it: every problem as `file: key: problem`, in the file that
set the key, and exactly the problems `ftpsup start` refuses with.

Every call is a real `python -m ftpsup` subprocess with a timeout, so a hang fails fast.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration import throwaway
from tests.integration.cli.commands import REPO, assert_nothing_listens, free_port, ftpsup

TIMEOUT = 60


# -- ftpsup check -------------------------------------------------------------------------


def test_check_on_the_shipped_instances_dir_says_ok() -> None:
    with throwaway.passable_tmp() as tmp_path:
        _check_shipped_instances(tmp_path)


def _check_shipped_instances(tmp_path: Path) -> None:
    # The shipped files serve FTPS: a fresh checkout has no certificate until `ftpsup cert`
    # (the README's run command does it), and check says exactly that. As root, the instances
    # also need their account, which `ftpsup setup` creates.
    config = tmp_path / "instances.d"
    shutil.copytree(REPO / "instances.d", config, ignore=shutil.ignore_patterns("users.toml"))
    before = ftpsup("check", str(config))
    assert before.returncode == 1
    assert "ftpsup cert" in before.stderr
    assert ftpsup("--config-dir", str(config), "cert").returncode == 0
    if os.geteuid() != 0:
        result = ftpsup("check", str(config))
        assert result.returncode == 1  # ports 21 and 990: check says so, rightly
        return
    if not _account_exists("ftpsup"):
        assert f"{config / '_shared.toml'}: nopriv_user: " in before.stderr
        assert "create it with `ftpsup setup`" in before.stderr
    # The shipped nopriv_user, under a name no host has, so the test can remove it after.
    name = throwaway.account_name()
    shared = config / "_shared.toml"
    shared.write_text(shared.read_text() + f'nopriv_user = "{name}"\n')
    try:
        assert f'no account "{name}"' in ftpsup("check", str(config)).stderr
        made = ftpsup("--config-dir", str(config), "setup")
        assert made.returncode == 0, made.stderr
        assert f"created system account {name}" in made.stderr
        result = ftpsup("check", str(config))
        again = ftpsup("--config-dir", str(config), "setup")
    finally:
        throwaway.remove_account(name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stderr


def _account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


BROKEN: dict[str, tuple[str, list[str]]] = {
    "wrong_type": ('write_enable = "yes"\n', ['write_enable: use true or false, not "yes"']),
    "unknown_key": (
        "idle_sesion_timeout = 5\n",
        ['idle_sesion_timeout: unknown key; did you mean "idle_session_timeout"?'],
    ),
    "port_out_of_range": ("listen_port = 70000\n", ["listen_port: 70000 is out of range"]),
    "pasv_range_reversed": (
        "pasv_min_port = 40000\npasv_max_port = 39000\n",
        ["pasv_min_port: 40000 is greater than pasv_max_port (39000)"],
    ),
    "toml_syntax": ("listen_port = \n", ["invalid toml"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_reports_a_broken_file_as_file_key_problem(config_dir: Path, case: str) -> None:
    text, expected = BROKEN[case]
    path = config_dir / "bad.toml"
    path.write_text('listen_address = "127.0.0.1"\n' + text)
    result = ftpsup("check", str(path))
    assert result.returncode == 1
    for problem in expected:
        assert f"{path}: {problem}" in result.stderr


def test_check_reports_every_problem_of_one_file_at_once(config_dir: Path) -> None:
    path = config_dir / "bad.toml"
    path.write_text(
        "listen_port = 70000\n"
        'write_enable = "yes"\n'
        "idle_sesion_timeout = 5\n"
        "pasv_min_port = 40000\n"
        "pasv_max_port = 39000\n"
    )
    result = ftpsup("check", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{path}: listen_port: 70000 is out of range 1..65535" in lines
    assert f'{path}: write_enable: use true or false, not "yes"' in lines
    assert (
        f'{path}: idle_sesion_timeout: unknown key; did you mean "idle_session_timeout"?' in lines
    )
    assert f"{path}: pasv_min_port: 40000 is greater than pasv_max_port (39000)" in lines
    assert "4 problem(s) found" in result.stderr


def test_check_of_a_missing_file_says_no_such_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    result = ftpsup("check", str(path))
    assert result.returncode == 1
    assert f"{path}: no such file" in result.stderr


def test_check_names_the_problem_in_shared_toml_by_its_file(config_dir: Path) -> None:
    shared = config_dir / "_shared.toml"
    shared.write_text(shared.read_text() + "pasv_min_port = 100\n")
    (config_dir / "one.toml").write_text('listen_address = "127.0.0.1"\n')
    result = ftpsup("check", str(config_dir))
    assert result.returncode == 1
    assert f"{shared}: pasv_min_port: 100 is out of range 1024..65535" in result.stderr


# -- check and start are one validation -----------------------------------------------------


def problem_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The `file: key: problem` lines of check or start, without the prefix and the count."""
    lines = [line.removeprefix("ftpsup: ") for line in result.stderr.splitlines()]
    return [line for line in lines if line.startswith("/")]


def write_store(config_dir: Path) -> Path:
    store = config_dir / "users.toml"
    store.write_text("[users]\n")
    return store


def test_start_refuses_with_exactly_the_problems_check_reports(config_dir: Path) -> None:
    # Before, start stopped at the file problems (the certificate went unreported) and blamed
    # the certificate set in _shared.toml on each instance file in turn.
    shared = config_dir / "_shared.toml"
    shared.write_text(
        shared.read_text() + 'ssl_enable = true\nrsa_cert_file = "tls/cert.pem"\n'
        'rsa_private_key_file = "tls/key.pem"\nrequire_ssl_reuse = false\n'
    )
    port = free_port()
    (config_dir / "a.toml").write_text(f'listen_address = "127.0.0.1"\nlisten_port = {port}\n')
    (config_dir / "b.toml").write_text(f'listen_address = "::1"\nlisten_port = {port}\n')
    (config_dir / "c.toml").write_text("idle_sesion_timeout = 5\n")

    check = ftpsup("check", str(config_dir))
    start = ftpsup("--config-dir", str(config_dir), "start", "all")

    cert = f"{shared}: rsa_cert_file: {config_dir / 'tls/cert.pem'} does not exist"
    assert check.returncode == 1
    assert start.returncode == 2, start.stdout + start.stderr
    assert problem_lines(start) == problem_lines(check)
    lines = problem_lines(check)
    assert [line for line in lines if "rsa_cert_file" in line] == [
        cert + " (create one with `ftpsup cert`)"
    ]
    assert f"{config_dir / 'c.toml'}: idle_sesion_timeout: unknown key" in "\n".join(lines)
    assert f"{shared}: user_db_file: {config_dir / 'users.toml'} does not exist" in "\n".join(lines)
    assert f"{shared}: require_ssl_reuse: warning: " in "\n".join(lines)
    assert not (config_dir.parent / "run" / "supervisor.pid").exists()
    assert_nothing_listens(port)


STORES: dict[str, tuple[str | None, str]] = {
    "missing": (None, "{shared}: user_db_file: {store} does not exist"),
    "directory": ("", "{shared}: user_db_file: {store} is a directory, not a file"),
    "broken_toml": ("[users\n", "{store}: not valid TOML"),
    "sha512_crypt_hash": (
        '[users.alice]\npassword = "$6$salt$abcdefghijklmnop"\nhome = "/srv/ftp/alice"\n',
        "{store}: users.alice: password is not a usable hash ($6$ is a crypt(3) hash, not "
        "scrypt: set the password again with `ftpsup user passwd alice`)",
    ),
}


@pytest.mark.parametrize("case", sorted(STORES))
def test_check_and_start_refuse_an_unusable_user_store(config_dir: Path, case: str) -> None:
    # Before, check said ok and the first login logged "user store rejected".
    content, expected = STORES[case]
    store = config_dir / "users.toml"
    if content == "":
        store.mkdir()
    elif content is not None:
        store.write_text(content)
    (config_dir / "a.toml").write_text(
        f'listen_address = "127.0.0.1"\nlisten_port = {free_port()}\n'
    )
    line = expected.format(shared=config_dir / "_shared.toml", store=store)

    check = ftpsup("check", str(config_dir))
    start = ftpsup("--config-dir", str(config_dir), "start", "all")
    if start.returncode == 0:  # a regression: stop what it started before failing
        ftpsup("--config-dir", str(config_dir), "stop", "all")

    assert check.returncode == 1, check.stdout + check.stderr
    assert [x for x in problem_lines(check) if x.startswith(line)], check.stderr
    assert start.returncode == 2
    assert problem_lines(start) == problem_lines(check)


def test_a_leftover_users_toml_is_not_an_instance(config_dir: Path, tmp_path: Path) -> None:
    # The store lives elsewhere; a users.toml left in the directory was read as instance "users".
    store = tmp_path / "store.toml"
    store.write_text("[users]\n")
    shared = config_dir / "_shared.toml"
    shared.write_text(shared.read_text().replace(str(config_dir / "users.toml"), str(store)))
    (config_dir / "users.toml").write_text('[users.bob]\npassword = "x"\nhome = "/srv"\n')
    (config_dir / "a.toml").write_text(
        f'listen_address = "127.0.0.1"\nlisten_port = {free_port()}\n'
    )

    result = ftpsup("check", str(config_dir))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert problem_lines(result) == [
        f"{config_dir / 'users.toml'}: warning: skipped, not an instance: users.toml is the user "
        "store's name, never an instance"
    ]


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        (
            'listen_address = "::ffff:127.0.0.1"',
            'listen_address: "::ffff:127.0.0.1" is an ipv4-mapped ipv6 address; use "127.0.0.1"',
        ),
        ("local_umask = 22", 'local_umask: 22 is decimal, not octal; did you mean "022"?'),
    ],
    ids=["ipv4_mapped_listen_address", "decimal_umask"],
)
def test_check_refuses_what_only_failed_later(config_dir: Path, setting: str, problem: str) -> None:
    # Before: the mapped address failed at bind, and 22 became the umask 0o026.
    write_store(config_dir)
    path = config_dir / "a.toml"
    path.write_text(f"listen_port = {free_port()}\n{setting}\n")

    result = ftpsup("check", str(config_dir))

    assert result.returncode == 1
    assert problem_lines(result) == [f"{path}: {problem}"]


def test_require_ssl_reuse_false_is_a_warning_with_its_reason(config_dir: Path) -> None:
    write_store(config_dir)
    path = config_dir / "a.toml"
    path.write_text(
        f'listen_address = "127.0.0.1"\nlisten_port = {free_port()}\nssl_enable = true\n'
        "require_ssl_reuse = false\n"
    )
    assert ftpsup("--config-dir", str(config_dir), "cert").returncode == 0

    result = ftpsup("check", str(config_dir))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    [line] = problem_lines(result)
    assert line.startswith(f"{path}: require_ssl_reuse: warning: ")
    assert "take over a transfer" in line
    assert "1 warning(s)" in result.stderr
