"""Running the real `python -m ftpsup` command line from a test.

One place for the subprocess mechanics the CLI tests share: the same interpreter as the
tests, output captured as text, a bounded wait, and the exit status left for the test to
judge (never `check=True`: a non-zero exit is often the outcome under test).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TIMEOUT = 60


def run_ftpsup(
    *args: str, stdin: str | None = None, cwd: Path | str | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """`python -m ftpsup ARGS` to completion (at most `timeout` s) in `cwd` (default: ours)."""
    return subprocess.run(
        [sys.executable, "-m", "ftpsup", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
