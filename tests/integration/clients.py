"""Real FTP clients for the integration tests: curl and lftp, run as processes with bounded
time, and what they printed.
"""

from __future__ import annotations

import subprocess

import attrs

from tests.integration.servers import Server

CURL_MAX_TIME = 60
LFTP_TLS_SETTINGS = (
    "set net:max-retries 1",
    "set net:reconnect-interval-base 1",
    "set net:timeout 10",
    "set cmd:fail-exit yes",
    "set cmd:interactive no",
    "set xfer:clobber yes",
    "set xfer:log no",
    "set cmd:save-cwd-history no",
    "set ftp:ssl-allow yes",
    "set ftp:ssl-force true",
    "set ftp:ssl-protect-data true",
    "set ftp:ssl-protect-list true",
    "set ssl:verify-certificate no",
)


@attrs.frozen
class ClientRun:
    """The outcome of one curl or lftp process, with the FTP commands it sent."""

    returncode: int
    stdout: bytes
    stderr: str
    sent: tuple[str, ...]


def run_curl(*args: str, timeout: float = CURL_MAX_TIME) -> ClientRun:
    """curl with bounded time, --verbose trace parsed for the commands it sent."""
    command = [
        "curl", "--silent", "--show-error", "--verbose", "--globoff",
        "--connect-timeout", "10", "--max-time", str(int(timeout)), *args,
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, timeout=timeout + 30, check=False)
    stderr = proc.stderr.decode("utf-8", "replace")
    sent = tuple(line[2:] for line in stderr.splitlines() if line.startswith("> "))
    return ClientRun(proc.returncode, proc.stdout, stderr, sent)


def lftp_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_lftp(
    srv: Server,
    *commands: str,
    url_scheme: str = "",
    settings: tuple[str, ...] = (),
    timeout: float = 120,
) -> ClientRun:
    """lftp logged in to `srv` over FTPS (explicit, or implicit with url_scheme="ftps")."""
    target = f"{url_scheme}://{srv.url_host}" if url_scheme else srv.host
    script = "\n".join(
        [
            *LFTP_TLS_SETTINGS,
            *settings,
            f"open -u {lftp_quote(f'{srv.user},{srv.password}')} -p {srv.port} {target}",
            *commands,
        ]
    )
    proc = subprocess.run(
        ["lftp", "-d", "-c", script],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    sent = tuple(line[5:] for line in stderr.splitlines() if line.startswith("---> "))
    return ClientRun(proc.returncode, proc.stdout, stderr, sent)
