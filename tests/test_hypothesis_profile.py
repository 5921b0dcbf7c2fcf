"""The Hypothesis profile tests/conftest.py loads, with CI set and without.

Each case imports the conftest in a child interpreter with a chosen environment, as pytest does
at start-up, and reads back the settings then in force: no command-line option or profile
already loaded in this process can colour the answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT = 60.0

READ_PROFILE = """
import json
import tests.conftest
from hypothesis import HealthCheck, settings
active = settings()
print(json.dumps({
    "deadline": None if active.deadline is None else str(active.deadline),
    "too_slow_checked": HealthCheck.too_slow not in active.suppress_health_check,
    "derandomize": active.derandomize,
    "database": active.database is not None,
    "print_blob": active.print_blob,
}))
"""


def _profile_with(ci: str | None) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-c", READ_PROFILE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    assert isinstance(profile, dict)
    return profile


@pytest.mark.parametrize("ci", [None, "", "true", "1"])
def test_no_profile_has_a_deadline_or_a_timing_health_check(ci: str | None) -> None:
    profile = _profile_with(ci)
    assert profile["deadline"] is None
    assert profile["too_slow_checked"] is False


@pytest.mark.parametrize("ci", [None, ""])
def test_outside_ci_examples_are_random_and_failures_remembered(ci: str | None) -> None:
    profile = _profile_with(ci)
    assert profile["derandomize"] is False
    assert profile["database"] is True


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_examples_are_fixed_and_failures_printed_with_their_blob(ci: str) -> None:
    profile = _profile_with(ci)
    assert profile["derandomize"] is True
    assert profile["database"] is False
    assert profile["print_blob"] is True
