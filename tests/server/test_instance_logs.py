"""ctx.logs: an instance's area loggers (ftpsup.<instance>.<area>) write its one log, unchanged."""

from __future__ import annotations

import re
from pathlib import Path

from ftpsup.config.schema import InstanceConfig
from tests.server.inprocess import instance_context


def test_area_lines_land_in_the_instance_log_in_vsftpd_format(tmp_path: Path) -> None:
    config = InstanceConfig(
        name="areas",
        source=tmp_path / "areas.toml",
        config_dir=tmp_path,
        state_dir=tmp_path / "run",
        log_dir=tmp_path / "log",
    )
    # The block's end stops the writer thread (the lines are then on disk) and puts the
    # shared "ftpsup.users" logger back.
    with instance_context(config) as ctx:
        assert ctx.logs.main is ctx.log
        assert ctx.logs.data.name == "ftpsup.areas.data"
        assert ctx.logs.control.name == "ftpsup.areas.control"
        ctx.logs.data.warning("pasv_address %s: %s", "ftp.example", "no address")
        ctx.logs.auth.info('FAIL LOGIN: Client "%s"', "192.0.2.1", extra={"user": "eve"})
    lines = config.vsftpd_log_file.read_text().splitlines()
    date = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"
    assert re.fullmatch(
        rf"{date} \[pid \d+\] WARNING: pasv_address ftp\.example: no address", lines[0]
    )
    assert re.fullmatch(rf'{date} \[pid \d+\] \[eve\] FAIL LOGIN: Client "192\.0\.2\.1"', lines[1])
