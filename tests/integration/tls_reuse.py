"""Helpers of the require_ssl_reuse tests: the TLS versions an instance is tried with, the data
mode a server's address family takes, the final reply of a transfer, and the word the refusal's
log line names.
"""

from __future__ import annotations

import ftplib

from tests.integration.servers import Server

VERSIONS = {
    "tls12": ("TLSv1.2", {"ssl_tlsv1_2": True, "ssl_tlsv1_3": False}),
    "tls13": ("TLSv1.3", {"ssl_tlsv1_2": False, "ssl_tlsv1_3": True}),
}


REUSE_LOG = "require_ssl_reuse"


def passive_mode(srv: Server) -> str:
    return "EPSV" if ":" in srv.host else "PASV"


def final_reply(ftp: ftplib.FTP) -> str:
    try:
        return ftp.getresp()
    except ftplib.Error as exc:
        return str(exc)
