"""Run pyftpdlib as the benchmark's peer: one user, TLS allowed, logging off, no connection cap.

Usage: FTPBENCH_PASSWORD=... python -m bench.pyftpdlib_server --port P --root DIR --user U
       --pasv 24000-27999 --cert cert.pem --key key.pem

Rules:
- The same settings as the other servers: passive range, TLS allowed but not required (so
  plain and FTPS rows use one server), the same certificate, no per-command log lines.
- Connection caps are lifted (max_cons 0 = unlimited) so a burst measures the server, not a
  setting; the listen backlog stays at pyftpdlib's default of 100, as shipped.
- The password is read from FTPBENCH_PASSWORD, never from argv.
"""

from __future__ import annotations

import argparse
import logging
import os

from pyftpdlib.authorizers import DummyAuthorizer  # type: ignore[import-untyped]
from pyftpdlib.handlers import TLS_FTPHandler  # type: ignore[import-untyped]
from pyftpdlib.servers import FTPServer  # type: ignore[import-untyped]


def main() -> None:
    """Parse the options and serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m bench.pyftpdlib_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--pasv", required=True, help="MIN-MAX")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, os.environ["FTPBENCH_PASSWORD"], args.root, perm="elradfmwMT")
    low, high = (int(p) for p in args.pasv.split("-"))

    class Handler(TLS_FTPHandler):  # type: ignore[misc]
        pass

    Handler.authorizer = authorizer
    Handler.passive_ports = list(range(low, high + 1))
    Handler.certfile = args.cert
    Handler.keyfile = args.key
    Handler.tls_control_required = False
    Handler.tls_data_required = False
    server = FTPServer((args.host, args.port), Handler)
    server.max_cons = 0
    server.max_cons_per_ip = 0
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main()
