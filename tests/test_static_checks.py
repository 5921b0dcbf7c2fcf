"""The static checks, run by the test suite: mypy --strict, ruff check and ruff format.

The standards ask every file to be clean under all three, and a standard nobody runs drifts. So
the README's test command enforces them: the `test` extra installs mypy and ruff, and the tests
here run each tool as a child process of this interpreter (`python -m mypy`, `python -m ruff`)
from the repository root, with no arguments of their own. Each tool then reads its settings from
pyproject.toml exactly as a bare `mypy` or `ruff check` typed by a developer does, so what passes
here passes there, and the other way round.

A check is skipped, with the reason, only when its tool is not installed. That must never be the
case under the README's command, so a pure test holds the `test` extra to listing both tools.

mypy keeps its cache in `.mypy_cache/` at the root (git-ignored, shared with a developer's own
runs and between interpreters). A cold run over ftpsup/ and tests/ took 7 to 12 s on the 2 busy
cores of the project's machines (Python 3.11, 3.12 and 3.13 alike), a warm one under a second;
ruff takes a fraction of a second either way.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Generous: a cold mypy run is 7 to 12 s, and the machine may be busy with other test runs.
TOOL_TIMEOUT = 600.0


def _pyproject() -> dict[str, object]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _table(data: dict[str, object], *keys: str) -> dict[str, object]:
    for key in keys:
        value = data[key]
        assert isinstance(value, dict), f"pyproject.toml: {key} is not a table"
        data = value
    return data


def _run_tool(module: str, *args: str) -> str:
    """Runs `python -m module args` at the repository root; returns its output if it exits 0."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (the README's `pip install -e '.[test]'` has it)")
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"`{module} {' '.join(args)}` found problems:\n{output}"
    return output


def test_mypy_checks_the_package_and_the_tests_strictly() -> None:
    mypy = _table(_pyproject(), "tool", "mypy")
    assert mypy["strict"] is True
    files = mypy["files"]
    assert isinstance(files, list)
    assert {"ftpsup", "tests"} <= set(files)


def test_the_test_extra_installs_the_checkers() -> None:
    extras = _table(_pyproject(), "project", "optional-dependencies")
    test_extra = extras["test"]
    assert isinstance(test_extra, list)
    names: set[str] = set()
    for requirement in test_extra:
        assert isinstance(requirement, str)
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert name is not None, requirement
        names.add(name[0].lower())
    assert {"mypy", "ruff"} <= names


def test_mypy_strict_finds_no_errors() -> None:
    output = _run_tool("mypy")
    assert "Success: no issues found" in output, output


def test_ruff_check_finds_no_problems() -> None:
    _run_tool("ruff", "check")


def test_ruff_format_would_change_nothing() -> None:
    _run_tool("ruff", "format", "--check")
