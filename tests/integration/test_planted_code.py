"""No code from the admin's working directory or environment reaches ftpsup's processes.

`ftpsup start` run from a directory holding an `ftpsup/` package, with PYTHONPATH pointing at
it, must never execute it: not in the supervisor it starts in the background, not in any
instance. The package leaves a marker file behind if anything ever imports it. No root needed.
"""

from __future__ import annotations

import ftplib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.servers import wait_until
from tests.integration.supervisors import Sup, own_supervisor

TIMEOUT = 60


def plant_package(directory: Path, marker: Path) -> None:
    """An `ftpsup` package that leaves `marker` behind if anything ever imports it."""
    package = directory / "ftpsup"
    package.mkdir()
    code = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    (package / "__init__.py").write_text(code)
    (package / "__main__.py").write_text(code)
    (directory / "sitecustomize.py").write_text(code)
    (directory / "usercustomize.py").write_text(code)


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    directory = tmp_path / "admin-cwd"
    directory.mkdir()
    marker = tmp_path / "planted-code-ran"
    plant_package(directory, marker)
    return directory, marker


def test_start_foreground_from_a_directory_with_an_ftpsup_package_never_runs_it(
    planted: tuple[Path, Path],
) -> None:
    directory, marker = planted
    with own_supervisor() as s:
        # The admin's own command is run safely here (-I); what it starts must be just as safe,
        # though it inherits the working directory and PYTHONPATH.
        env = {**os.environ, "PYTHONPATH": str(directory), "PYTHONSTARTUP": str(directory / "x")}
        process = subprocess.Popen(
            [sys.executable, "-I", "-m", "ftpsup", "--config-dir", str(s.etc)]
            + ["start", "--foreground", "all"],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _serves(s), "the instances", timeout=TIMEOUT)
            with s.connect("ipv4") as ftp:
                assert ftp.pwd() == "/"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=TIMEOUT)
        # The background supervisor of `ftpsup start`, from the same place.
        result = subprocess.run(
            [sys.executable, "-I", "-m", "ftpsup", "--config-dir", str(s.etc), "start", "all"],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        with s.connect("ipv6") as ftp:
            assert ftp.pwd() == "/"
    assert not marker.exists(), marker.read_text()


def _serves(s: Sup) -> bool:
    try:
        with s.connect("ipv4"):
            return True
    except (OSError, EOFError, ftplib.Error):
        return False
