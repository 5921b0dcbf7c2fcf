"""An InstanceConfig built in memory for unit tests, without a config directory on disk.

Every path it names lies under the test's tmp_path; the test passes the keys it is about.
"""

from __future__ import annotations

from pathlib import Path

from ftpsup.config.schema import InstanceConfig


def minimal_config(tmp_path: Path, **values: object) -> InstanceConfig:
    """The "ipv4" instance with its state, logs and user store in `tmp_path`, plus `values`."""
    settings: dict[str, object] = {
        "name": "ipv4",
        "source": tmp_path / "ipv4.toml",
        "config_dir": tmp_path,
        "state_dir": tmp_path / "run",
        "log_dir": tmp_path / "log",
        "user_db_file": tmp_path / "users.toml",
        **values,
    }
    return InstanceConfig(**settings)  # type: ignore[arg-type]
