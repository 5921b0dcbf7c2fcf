"""pasv_addr_resolve: a host name in pasv_address is resolved and put in PASV replies.

docs/firewall.md and docs/migrating-from-vsftpd.md say so. The instance listens on 127.0.0.2
(loopback, but not the address "localhost" resolves to), so a PASV reply carrying 127.0.0.1 can
only come from resolving pasv_address.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.servers import Server


def test_pasv_replies_carry_the_resolved_host_name(server_factory: Callable[..., Server]) -> None:
    srv = server_factory("127.0.0.2", pasv_address="localhost", pasv_addr_resolve=True)
    ftp = srv.connect()
    try:
        reply = ftp.sendcmd("PASV")
        assert reply.startswith("227 ")
        assert "(127,0,0,1," in reply, reply
    finally:
        ftp.close()


def test_without_pasv_address_the_reply_carries_the_server_address(
    server_factory: Callable[..., Server],
) -> None:
    # The control for the test above: the same server without pasv_address answers 127.0.0.2.
    srv = server_factory("127.0.0.2")
    ftp = srv.connect()
    try:
        assert "(127,0,0,2," in ftp.sendcmd("PASV")
    finally:
        ftp.close()
