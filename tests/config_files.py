"""Helpers for the config loader's tests: writing instance files and reading their problems.

The autouse fixture here makes the default nopriv_user, "ftpsup", look present on any host, so
the tests that import it are about the keys they write, not about the host's accounts.
"""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from ftpsup.config.load import load_instance
from ftpsup.errors import ConfigError, ConfigProblem

REPO = Path(__file__).resolve().parent.parent
OLD_TLS = "is insecure and not supported; ftpsup offers TLS 1.2 and 1.3"


@pytest.fixture(autouse=True)
def default_account_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about other keys: the host has the default nopriv_user, "ftpsup".

    As root, check_paths requires that account (tests/test_accounts.py covers that); a fresh
    host, like the CI's, has not run `ftpsup setup`.
    """
    real = pwd.getpwnam

    def getpwnam(name: str) -> pwd.struct_passwd:
        try:
            return real(name)
        except KeyError:
            if name != "ftpsup":
                raise
            return pwd.struct_passwd((name, "x", 64999, 64999, "", "/nonexistent", "/bin/false"))

    monkeypatch.setattr("ftpsup.config.cross.pwd.getpwnam", getpwnam)


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_instance(path)
    return info.value.problems
