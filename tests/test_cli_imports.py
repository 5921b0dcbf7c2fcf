"""What the command line loads before it runs a command (ftpsup/cli/main.py's rule).

`ftpsup status`, `stop`, `restart`, `reload` and `--version` need neither trio nor
cryptography, and loading them was more than half of such a command's CPU (docs/performance.md,
"The command line's start"). Each command imports what it needs when it runs; this checks the
modules a fresh interpreter holds after importing the command line and the supervisor's client.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("trio", "cryptography", "OpenSSL", "ssl")

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2:]:
    __import__(name)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def loaded_after(*modules: str) -> set[str]:
    """The top-level packages a fresh `python -I` holds after importing `modules`."""
    out = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(REPO_ROOT), *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    "modules",
    [("ftpsup.cli.main",), ("ftpsup.cli.main", "ftpsup.supervisor.client")],
    ids=["parser", "supervisor_client"],
)
def test_the_command_line_loads_neither_trio_nor_cryptography(modules: tuple[str, ...]) -> None:
    assert loaded_after(*modules) & set(HEAVY) == set()


def test_the_probe_sees_what_a_command_does_load() -> None:
    # The control: `ftpsup check` reads certificates, so its module loads cryptography.
    assert "cryptography" in loaded_after("ftpsup.config.check")
