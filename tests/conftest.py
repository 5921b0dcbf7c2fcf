"""Settings shared by every test: the Hypothesis profiles, and the groups of a parallel run.

Two profiles, both built on Hypothesis's own defaults, and one of them is loaded here, before
any test is collected:

- "dev", everywhere but CI: random examples and the example database in `.hypothesis/`, so
  each run explores new inputs and a failure found once is tried first the next time.
- "ci", when the environment variable CI is set to anything non-empty (CI runs with CI=true):
  derandomized, so the examples are a function of the test and the Hypothesis version and a
  red CI run turns red again when re-run; no database, so the result depends on the commit
  alone, not on what earlier runs left in `.hypothesis/`; and print_blob, so a failure comes
  with the `@reproduce_failure` line that replays it anywhere.

Neither has a deadline, and neither runs the too_slow health check. Both measure wall-clock
time, and on the project's machines (2 cores shared by several test runs at once) that measures
the load, not the code: a test would fail with DeadlineExceeded or Flaky for no fault of
ftpsup's. The tests here set no timing expectations of their own, as a rule (deterministic
tests: events and states, never durations). The per-test `@settings(deadline=None)` that
predate this file are redundant but harmless.

Recent Hypothesis releases load a built-in "ci" profile of their own when CI is set; the one
here replaces it with the same choices made explicit, so they hold on every Hypothesis release
pyproject.toml allows, older ones included. `pytest --hypothesis-profile=NAME` still overrides
the choice made here.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_TIMING_HEALTH_CHECKS = [HealthCheck.too_slow]

settings.register_profile(
    "dev",
    parent=settings.get_profile("default"),
    deadline=None,
    suppress_health_check=_TIMING_HEALTH_CHECKS,
)
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    deadline=None,
    suppress_health_check=_TIMING_HEALTH_CHECKS,
    derandomize=True,
    database=None,
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# -- parallel runs (pytest-xdist, `--dist loadgroup` in pyproject.toml) ---------------------
# A test that uses a module-scoped fixture (an instance or a supervisor shared by a module's
# tests) runs on the same worker as every other test of its module using that fixture with
# the same parameter, so the fixture starts once per parameter, not once per worker, and the
# module's tests see it in the order they are written. Every other test goes to whichever
# worker is free.

_SHARED_SCOPES = frozenset({"module", "package", "class"})


def _xdist_group(item: pytest.Item) -> str | None:
    """The module, and the parameters of the module-scoped fixtures the test uses."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    shared = [
        name
        for name, defs in info.name2fixturedefs.items()
        if defs and defs[-1].scope in _SHARED_SCOPES
    ]
    if not shared:
        return None
    module = item.nodeid.split("::", 1)[0]
    return module + "".join(sorted(f" {n}={params[n]!r}" for n in shared if n in params))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = _xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
