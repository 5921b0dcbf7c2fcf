"""`ftpsup serve` with a bad config, as an admin runs it: exit 2 with the message on stderr and
nothing bound, and exit 1 on a port in use.

Every call is a real `python -m ftpsup` subprocess with a timeout, so a hang fails fast.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli.commands import assert_nothing_listens, free_port, ftpsup

# -- ftpsup serve with a bad config: exit 2, the message on stderr, nothing bound ----------


SERVE_BROKEN: dict[str, tuple[str, str]] = {
    "wrong_type": ('write_enable = "yes"\n', 'write_enable: use true or false, not "yes"'),
    "unknown_key": (
        "idle_sesion_timeout = 5\n",
        'idle_sesion_timeout: unknown key; did you mean "idle_session_timeout"?',
    ),
    "pasv_range_reversed": (
        "pasv_min_port = 40000\npasv_max_port = 39000\n",
        "pasv_min_port: 40000 is greater than pasv_max_port (39000)",
    ),
    "ftp_data_port_out_of_range": (
        "ftp_data_port = 0\n",
        "ftp_data_port: 0 is out of range 1..65535",
    ),
}


@pytest.mark.parametrize("case", sorted(SERVE_BROKEN))
def test_serve_with_a_broken_config_exits_2_and_binds_nothing(config_dir: Path, case: str) -> None:
    text, problem = SERVE_BROKEN[case]
    port = free_port()
    path = config_dir / "bad.toml"
    path.write_text(f'listen_address = "127.0.0.1"\nlisten_port = {port}\n{text}')
    result = ftpsup("serve", str(path))
    assert result.returncode == 2
    assert f"{path}: {problem}" in result.stderr
    assert_nothing_listens(port)


def test_serve_with_several_problems_prints_them_all(config_dir: Path) -> None:
    port = free_port()
    path = config_dir / "bad.toml"
    path.write_text(
        f'listen_address = "127.0.0.1"\nlisten_port = {port}\n'
        'write_enable = "yes"\nidle_sesion_timeout = 5\n'
    )
    result = ftpsup("serve", str(path))
    assert result.returncode == 2
    assert f'{path}: write_enable: use true or false, not "yes"' in result.stderr
    assert f"{path}: idle_sesion_timeout: unknown key" in result.stderr
    assert_nothing_listens(port)


def test_serve_with_a_port_out_of_range_exits_2(config_dir: Path) -> None:
    path = config_dir / "bad.toml"
    path.write_text('listen_address = "127.0.0.1"\nlisten_port = 70000\n')
    result = ftpsup("serve", str(path))
    assert result.returncode == 2
    assert f"{path}: listen_port: 70000 is out of range 1..65535" in result.stderr


def test_serve_with_a_toml_syntax_error_exits_2(config_dir: Path) -> None:
    path = config_dir / "bad.toml"
    path.write_text('listen_address = "127.0.0.1"\nwrite_enable = YES\n')
    result = ftpsup("serve", str(path))
    assert result.returncode == 2
    assert f"{path}: invalid toml" in result.stderr
    assert "use true or false" in result.stderr


def test_serve_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    result = ftpsup("serve", str(path))
    assert result.returncode == 2
    assert f"{path}: no such file" in result.stderr


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_serve_on_a_port_in_use_exits_1_with_address_already_in_use(
    config_dir: Path, occupied_port: int
) -> None:
    path = config_dir / "busy.toml"
    path.write_text(f'listen_address = "127.0.0.1"\nlisten_port = {occupied_port}\n')
    result = ftpsup("serve", str(path))
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert f"127.0.0.1:{occupied_port}" in result.stderr
