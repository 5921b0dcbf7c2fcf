"""The fixture of the command-line tests: `config_dir`, a config directory whose _shared.toml
keeps every state and log file in the test's tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A config directory whose _shared.toml keeps every state and log file in tmp_path."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "_shared.toml").write_text(
        f'user_db_file = "{etc / "users.toml"}"\n'
        f'state_dir = "{tmp_path / "run"}"\n'
        f'log_dir = "{tmp_path / "log"}"\n'
        "run_as_root = true\n"
    )
    return etc
