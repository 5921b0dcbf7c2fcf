"""The fixture of the security tests: `ftp`, alice logged in to the module's server, in the test's
own work directory.
"""

from __future__ import annotations

import ftplib
from collections.abc import Iterator

import pytest

from tests.integration.security.attacks import TIMEOUT
from tests.integration.servers import Server


@pytest.fixture
def ftp(server: Server, workdir: str) -> Iterator[ftplib.FTP]:
    """alice, logged in, in the test's workdir."""
    client = server.connect(timeout=TIMEOUT)
    client.cwd(workdir)
    yield client
    client.close()
