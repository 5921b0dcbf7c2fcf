"""The fixtures of the integration tests: real ftpsup instances on loopback, plain and FTPS.

Each server is the real `python -m ftpsup serve` process, started by
tests/integration/servers.py. `server` and `tls_server` are module-scoped (one instance per
module and address family, see tests/conftest.py for how a parallel run groups their tests);
`server_factory` starts instances with particular settings for one test. The helpers the tests
call are in importable modules beside this one: servers.py (instances, users, waiting on
them), raw_ftp.py (hand-made control and data connections), ftps.py (certificates and FTPS
clients) and clients.py (curl and lftp).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ftps import CertPair, tls_settings, write_cert_pair
from tests.integration.servers import (
    HOSTS,
    Server,
    start_server,
)


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One instance per module and address family, with user alice."""
    srv = start_server(tmp_path_factory.mktemp("srv"), request.param)
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start instances with particular settings; each is stopped at the end of the test."""
    started: list[Server] = []

    def factory(host: str = "127.0.0.1", **settings: Any) -> Server:
        srv = start_server(tmp_path / f"s{len(started)}", host, **settings)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture
def workdir(server: Server, request: pytest.FixtureRequest) -> str:
    """A fresh directory in alice's home for one test, as a virtual path."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:80]
    path = server.home / name
    path.mkdir(parents=True, exist_ok=True)
    return "/" + name


os.environ.setdefault("PYTHONUNBUFFERED", "1")


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    """One self-signed certificate for every FTPS instance of the test session."""
    return write_cert_pair(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module", params=HOSTS, ids=["ipv4", "ipv6"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_cert: CertPair
) -> Iterator[Server]:
    """One explicit-FTPS instance per module and address family (forced logins and data)."""
    srv = start_server(tmp_path_factory.mktemp("tls_srv"), request.param, **tls_settings(tls_cert))
    yield srv
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


@pytest.fixture
def tls_workdir(tls_server: Server, request: pytest.FixtureRequest) -> str:
    """A fresh directory in alice's home on `tls_server`, as a virtual path."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:80]
    (tls_server.home / name).mkdir(parents=True, exist_ok=True)
    return "/" + name
