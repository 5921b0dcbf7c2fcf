"""The xferlog is written by the logging thread: a failing write never touches a session.

A full disk under xferlog_file (here /dev/full, where every write fails with ENOSPC) costs
the xferlog its lines, and the instance log gets one warning about it; the upload itself is
stored, gets its 226, and the session goes on serving.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from tests.integration.servers import Server

UPLOADS = 3


def test_failing_xferlog_write_ends_no_session(server_factory: Callable[..., Server]) -> None:
    srv = server_factory(xferlog_file="/dev/full")
    ftp = srv.connect()
    try:
        for n in range(UPLOADS):
            reply = ftp.storbinary(f"STOR up{n}.bin", io.BytesIO(b"x" * 1000))
            assert reply.startswith("226"), reply
        assert ftp.sendcmd("NOOP").startswith("200")
        assert ftp.quit().startswith("221")
    finally:
        ftp.close()
    for n in range(UPLOADS):
        assert (srv.home / f"up{n}.bin").read_bytes() == b"x" * 1000
    # The stop writes out every queued record first, so the log is complete once it exits.
    srv.stop()
    assert srv.process.returncode == 0
    lines = srv.log_text().splitlines()
    assert sum("OK UPLOAD" in line for line in lines) == UPLOADS
    failures = [line for line in lines if "xferlog" in line and "No space left" in line]
    assert len(failures) == 1, failures
