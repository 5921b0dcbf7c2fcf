"""require_ssl_reuse on a real instance, and TLS 1.3 uploads that must arrive complete.

Rules:
- A TLS data connection is accepted only when it resumes a session the instance issued to a
  control connection of the same logged-in user from the same address (ssl_reuse_scope =
  "user", the default), or to its own control connection (ssl_reuse_scope = "connection"):
  the resuming client passes on TLS 1.2-only and TLS 1.3-only instances; a client that does
  not resume, and one that presents another user's session or another address's, get 522
  and a log line naming require_ssl_reuse and why.
- Uploads are checked byte for byte on disk; an upload cut short must never be answered 226.
"""

from __future__ import annotations

import ftplib
import re
import ssl
from collections.abc import Callable, Iterator

import pytest

from tests.integration.ftps import (
    CertPair,
    client_context,
    connect_tls,
    control_session,
    sha256_hex,
    tls_download,
    tls_payload,
    tls_settings,
    tls_upload,
    wrap_data,
)
from tests.integration.raw_ftp import open_data, recv_all
from tests.integration.servers import HOSTS, Server, add_user, start_server, wait_for_log
from tests.integration.tls_reuse import REUSE_LOG, VERSIONS, final_reply, passive_mode

TIMEOUT = 10
ServerFactory = Callable[..., Server]


@pytest.fixture(
    scope="module",
    params=[(h, v) for h in HOSTS for v in VERSIONS],
    ids=lambda p: f"{'ipv6' if ':' in p[0] else 'ipv4'}-{p[1]}",
)
def versioned(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_cert: CertPair
) -> Iterator[tuple[Server, str]]:
    """A forced-FTPS instance that speaks one TLS version only, and that version's name."""
    host, version = request.param
    name, keys = VERSIONS[version]
    srv = start_server(tmp_path_factory.mktemp(version), host, **tls_settings(tls_cert, **keys))
    yield srv, name
    srv.stop()
    assert srv.process.returncode == 0, "server did not stop cleanly"


def active_mode(srv: Server) -> str:
    return "EPRT" if ":" in srv.host else "PORT"


def refused_transfer(
    ftp: ftplib.FTP_TLS, mode: str, command: str, session: ssl.SSLSession | None, data: bytes = b""
) -> tuple[str, bool | None]:
    """Run `command` with a data connection that offers `session`; the final reply, resumed."""
    conn, _ = open_data(ftp, mode, command)
    resumed: bool | None = None
    try:
        with wrap_data(ftp, conn, session=session) as tls:
            resumed = tls.session_reused
            if data:
                tls.sendall(data)
            recv_all(tls, timeout=TIMEOUT)
    except (OSError, ssl.SSLError):
        pass  # the server closes the connection it refused; how the client notices varies
    return final_reply(ftp), resumed


# -- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("active", [False, True], ids=["passive", "active"])
def test_resuming_client_is_accepted(versioned: tuple[Server, str], active: bool) -> None:
    srv, version = versioned
    mode = active_mode(srv) if active else passive_mode(srv)
    data = tls_payload(500_000, seed=20)
    ftp = connect_tls(srv, timeout=TIMEOUT)
    try:
        stored, stor_resumed = tls_upload(ftp, mode, f"STOR reuse_{mode}.bin", data)
        got, fetched, retr_resumed = tls_download(ftp, mode, f"RETR reuse_{mode}.bin")
        listing, listed, list_resumed = tls_download(ftp, mode, "LIST")
        assert isinstance(ftp.sock, ssl.SSLSocket)
        control_version = ftp.sock.version()
    finally:
        ftp.close()

    assert control_version == version
    assert (stored[:3], fetched[:3], listed[:3]) == ("226", "226", "226")
    assert stor_resumed
    assert retr_resumed
    assert list_resumed
    assert sha256_hex(got) == sha256_hex(data)
    assert f" reuse_{mode}.bin".encode() in listing


@pytest.mark.parametrize("verb", ["RETR", "STOR"])
def test_a_transfer_the_client_cuts_short_leaves_the_session_resumable(
    versioned: tuple[Server, str], verb: str
) -> None:
    # The server keeps sessions in its cache, and OpenSSL drops the session of a connection
    # freed without a TLS shutdown: a failed transfer must not cost the next one its session.
    srv, _ = versioned
    data = tls_payload(4_000_000, seed=61)
    srv.home.joinpath("cut.bin").write_bytes(data)
    ftp = connect_tls(srv, timeout=TIMEOUT)
    try:
        name = "cut.bin" if verb == "RETR" else "cut_upload.bin"
        conn, _ = open_data(ftp, passive_mode(srv), f"{verb} {name}")
        tls = wrap_data(ftp, conn, session=control_session(ftp))
        if verb == "RETR":
            tls.recv(1000)
        else:
            tls.sendall(data[:100_000])
        tls.close()  # no close_notify
        cut = final_reply(ftp)
        noop = ftp.voidcmd("NOOP")
        got, again, resumed = tls_download(ftp, passive_mode(srv), "RETR cut.bin")
    finally:
        ftp.close()

    assert cut.startswith("426"), cut
    assert noop.startswith("200")
    assert again.startswith("226"), again
    assert resumed
    assert sha256_hex(got) == sha256_hex(data)


# -- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["RETR", "STOR"])
def test_client_that_does_not_resume_gets_522_and_a_log_line(
    versioned: tuple[Server, str], verb: str
) -> None:
    srv, _ = versioned
    srv.home.joinpath("secret.bin").write_bytes(b"not for a stranger")
    before = srv.log_text().count(REUSE_LOG)
    ftp = connect_tls(srv, timeout=TIMEOUT)
    try:
        name = "secret.bin" if verb == "RETR" else "nonresumed.bin"
        reply, resumed = refused_transfer(
            ftp, passive_mode(srv), f"{verb} {name}", None, data=b"x" * 1000 * (verb == "STOR")
        )
        # The session goes on: the same client, resuming this time, is served.
        _, again, again_resumed = tls_download(ftp, passive_mode(srv), "RETR secret.bin")
    finally:
        ftp.close()
    logs = wait_for_log(srv, REUSE_LOG, count=before + 1)

    assert reply.startswith("522 "), reply
    assert resumed is not True
    refusals = re.findall(r"did not resume .*session.*\(require_ssl_reuse\)", logs)
    assert len(refusals) == before + 1, logs[-2000:]
    assert again.startswith("226")
    assert again_resumed
    if verb == "STOR":
        assert srv.home.joinpath("nonresumed.bin").stat().st_size == 0


def test_session_of_another_control_connection_of_the_same_user_is_accepted(
    versioned: tuple[Server, str],
) -> None:
    # What rclone does: one client session cache for all its control connections, so a data
    # connection offers the session another control connection of the same client received.
    srv, _ = versioned
    srv.home.joinpath("shared.bin").write_bytes(b"alice's, from either connection")
    ctx = client_context()  # one client context: Python then lets B offer A's session
    a = connect_tls(srv, context=ctx, timeout=TIMEOUT)
    b = connect_tls(srv, context=ctx, timeout=TIMEOUT)
    try:
        conn, _ = open_data(b, passive_mode(srv), "RETR shared.bin")
        with wrap_data(b, conn, session=control_session(a)) as tls:
            resumed = tls.session_reused
            got = recv_all(tls, timeout=TIMEOUT)
        reply = final_reply(b)
    finally:
        a.close()
        b.close()

    assert reply.startswith("226"), reply
    assert resumed
    assert got == b"alice's, from either connection"


@pytest.mark.parametrize("version", VERSIONS)
def test_session_of_another_control_connection_is_refused_with_connection_scope(
    server_factory: ServerFactory, tls_cert: CertPair, version: str
) -> None:
    _, keys = VERSIONS[version]
    srv = server_factory(
        "127.0.0.1", **tls_settings(tls_cert, ssl_reuse_scope="connection", **keys)
    )
    srv.home.joinpath("mine.bin").write_bytes(b"belongs to A")
    ctx = client_context()
    a = connect_tls(srv, context=ctx, timeout=TIMEOUT)
    b = connect_tls(srv, context=ctx, timeout=TIMEOUT)
    try:
        stolen, _ = refused_transfer(b, "PASV", "RETR mine.bin", control_session(a))
        own, own_reply, own_resumed = tls_download(a, "PASV", "RETR mine.bin")
    finally:
        a.close()
        b.close()
    logs = wait_for_log(srv, REUSE_LOG)

    assert stolen.startswith("522 "), stolen
    assert re.search(
        r"resumed the session of another control connection \(#\d+\), and "
        r'ssl_reuse_scope = "connection"; refused \(require_ssl_reuse\)',
        logs,
    ), logs[-2000:]
    assert own_reply.startswith("226")
    assert own_resumed
    assert own == b"belongs to A"


def test_session_of_another_user_is_refused_with_a_log_line_naming_it(
    versioned: tuple[Server, str],
) -> None:
    srv, _ = versioned
    bob_password = "bob builds"
    bob_home = srv.home.parent / "bob"
    if not bob_home.exists():  # the fixture's instance is shared by the module's tests
        bob_home.mkdir()
        add_user(srv.config_dir, "bob", bob_password, bob_home)
    srv.home.joinpath("alices.bin").write_bytes(b"alice's only")
    before = srv.log_text().count(REUSE_LOG)
    ctx = client_context()
    alice = connect_tls(srv, context=ctx, timeout=TIMEOUT)
    bob = connect_tls(srv, context=ctx, login=False, timeout=TIMEOUT)
    try:
        bob.login("bob", bob_password)
        bob.prot_p()
        # Bob presents Alice's session to download from his own home, and to upload there.
        srv.home.parent.joinpath("bob", "bobs.bin").write_bytes(b"bob's")
        got, _ = refused_transfer(bob, passive_mode(srv), "RETR bobs.bin", control_session(alice))
        put, _ = refused_transfer(
            bob, passive_mode(srv), "STOR put.bin", control_session(alice), data=b"z" * 5000
        )
        # Alice, resuming her own, is served.
        own, own_reply, own_resumed = tls_download(alice, passive_mode(srv), "RETR alices.bin")
    finally:
        alice.close()
        bob.close()
    logs = wait_for_log(srv, REUSE_LOG, count=before + 2)

    assert got.startswith("522 "), got
    assert put.startswith("522 "), put
    assert srv.home.parent.joinpath("bob", "put.bin").stat().st_size == 0
    refusals = re.findall(
        r"\(control connection #\d+, user bob\) resumed the session of control connection "
        r"#\d+ of another user \(alice\); refused \(require_ssl_reuse\)",
        logs,
    )
    assert len(refusals) >= 2, logs[-2000:]
    assert own_reply.startswith("226")
    assert own_resumed
    assert own == b"alice's only"
