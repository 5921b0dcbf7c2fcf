"""The ftpsup benchmark harness: ftpsup beside vsftpd, Pure-FTPd and pyftpdlib on loopback.

Rules: nothing here is part of the product or of the test suite; run it with
`python -m bench.run` from the repository root (see bench/README.md).
"""

from __future__ import annotations
