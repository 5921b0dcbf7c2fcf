"""lftp runs for the lftp tests: the settings that make every run fail fast, the data-connection
modes with the verb each address family must show (payloads are in payloads.py).

Every run is `lftp -d -c`, so the commands lftp sent are read from its debug trace, with a
subprocess timeout on top.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

import attrs

from tests.integration.clients import ClientRun, lftp_quote
from tests.integration.servers import Server

LFTP = shutil.which("lftp")
SETTINGS = (
    "set net:max-retries 1",
    "set net:reconnect-interval-base 1",
    "set net:timeout 15",
    "set cmd:fail-exit yes",
    "set cmd:interactive no",
    "set ftp:ssl-allow no",
    "set xfer:clobber yes",
    "set xfer:log no",
    "set cmd:save-cwd-history no",
)


@attrs.frozen
class Mode:
    """A data-connection mode: lftp settings and the verb each address family must show."""

    settings: tuple[str, ...]
    verb_v4: str
    verb_v6: str

    def verb(self, server: Server) -> str:
        return self.verb_v6 if ":" in server.host else self.verb_v4


MODES = {
    # lftp prefers PASV over IPv4 and must use EPSV over IPv6 (RFC 2428 §1).
    "passive": Mode(("set ftp:passive-mode true",), "PASV", "EPSV"),
    "epsv": Mode(("set ftp:passive-mode true", "set ftp:prefer-epsv true"), "EPSV", "EPSV"),
    "active": Mode(("set ftp:passive-mode false",), "PORT 127,0,0,1,", "EPRT |2|::|"),
}


def lftp(
    server: Server,
    *commands: str,
    cwd: str = "/",
    settings: Sequence[str] = MODES["passive"].settings,
    password: str | None = None,
    check: bool = True,
) -> ClientRun:
    """Run lftp logged in to `server`, change to `cwd`, run `commands`; return the outcome."""
    login = f"{server.user},{server.password if password is None else password}"
    script = "\n".join(
        [
            *SETTINGS,
            *settings,
            f"open -u {lftp_quote(login)} -p {server.port} {server.host}",
            f"cd {lftp_quote(cwd)}",
            *commands,
        ]
    )
    proc = subprocess.run(
        [str(LFTP), "-d", "-c", script],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    sent = tuple(line[5:] for line in stderr.splitlines() if line.startswith("---> "))
    run = ClientRun(proc.returncode, proc.stdout, stderr, sent)
    if check:
        assert run.returncode == 0, run.stderr
    return run
