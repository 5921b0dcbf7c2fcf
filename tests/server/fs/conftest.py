"""The fixtures of the JailedFs tests: a known process umask, and `jail`, a home with an outside
sibling, once under openat2 and once under the O_NOFOLLOW walk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftpsup.server.fs import JailedFs
from tests.server.fs.jails import Jail, openat2_available


@pytest.fixture(autouse=True)
def process_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def jail(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Jail]:
    home = tmp_path / "home"
    outside = tmp_path / "outside"
    home.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("outside")
    if request.param and not openat2_available(home):
        pytest.skip("openat2 is not available here")
    fs = JailedFs(home, use_openat2=request.param)
    yield Jail(fs, home, outside)
    fs.close()
