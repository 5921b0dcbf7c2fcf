"""The checks after a fuzz run: is the instance serving, are its logs and its home clean.

Theory of operation: none of these depend on timing. They look at what the run left behind:
a fresh client's session (greeting, login, LIST, QUIT), the log files and standard error
(Python tracebacks, "Exception ignored"), and the files around each home (nothing named by the
fuzzer may exist outside one).
"""

from __future__ import annotations

import ftplib
import os
from collections.abc import Iterator
from pathlib import Path

from tests.integration.ftps import connect_tls
from tests.integration.fuzz_inputs import NAME_PREFIX
from tests.integration.fuzz_wire import Target
from tests.integration.servers import Server

TRACEBACK = "Traceback (most recent call last):"
CHECK_TIMEOUT = 20
MAX_WALK = 100_000
# A file in each home that no fuzzed command may name, so it must still be listed at the end.
SENTINEL = "sentinel.txt"


def check_serving(srv: Server, target: Target) -> list[str]:
    """Problems of a fresh client: greeting, login, LIST of the home, QUIT."""
    where = f"{srv.host}{' (implicit FTPS)' if target.implicit else ''}"
    try:
        if target.tls_required or target.implicit:
            ftp: ftplib.FTP = connect_tls(srv, implicit=target.implicit, timeout=CHECK_TIMEOUT)
        else:
            ftp = srv.connect(timeout=CHECK_TIMEOUT)
        try:
            welcome = ftp.getwelcome()
            # The home holds names that are not UTF-8; every byte decodes as Latin-1.
            ftp.encoding = "latin-1"
            listing: list[str] = []
            ftp.retrlines("LIST", listing.append)
            goodbye = ftp.quit()
        finally:
            ftp.close()
    except (OSError, EOFError, ValueError, ftplib.Error) as exc:
        return [f"{where}: a fresh session failed: {exc!r}"]
    problems = []
    if not welcome.startswith("220"):
        problems.append(f"{where}: greeting {welcome!r}")
    if not any(line.endswith(f" {SENTINEL}") for line in listing):
        problems.append(f"{where}: LIST of the home lacks {SENTINEL}: {listing[:5]!r}")
    if not goodbye.startswith("221"):
        problems.append(f"{where}: QUIT answered {goodbye!r}")
    return problems


def traceback_excerpts(log: str, *, before: int = 6) -> list[str]:
    """Each traceback in `log` with the `before` log lines ahead of it, up to its exception."""
    lines = log.splitlines()
    excerpts = []
    for i, line in enumerate(lines):
        if line != TRACEBACK:
            continue
        end = i + 1
        while end < len(lines) and (
            lines[end].startswith(" ") or lines[end] == TRACEBACK or not lines[end].strip()
        ):
            end += 1
        excerpts.append("\n".join(lines[max(0, i - before) : end + 1]))
    return excerpts


def stderr_problems(text: str) -> list[str]:
    """What the instances wrote to standard error that means a bug: tracebacks, and the
    "Exception ignored" lines Python prints for errors it cannot raise (in __del__, say)."""
    problems = traceback_excerpts(text, before=0)
    problems += [line for line in text.splitlines() if line.startswith("Exception ignored")]
    return problems


def distinct_tracebacks(excerpts: tuple[str, ...] | list[str]) -> list[str]:
    """One excerpt per distinct exception (its last line and the frame that raised it)."""
    seen: dict[tuple[str, str], str] = {}
    for excerpt in excerpts:
        lines = excerpt.splitlines()
        frames = [ln for ln in lines if ln.startswith('  File "')]
        key = (frames[-1] if frames else "", lines[-1].split(":", 1)[0])
        seen.setdefault(key, excerpt)
    return list(seen.values())


def stray_files(workdir: Path, roots: list[Path]) -> list[Path]:
    """Files named by the fuzzer outside every home: under `workdir`, and beside each home."""
    homes = [root.resolve() for root in roots]
    found: list[Path] = []
    places: list[Path] = [h for home in homes for h in home.parents]
    for path in _walk(workdir.resolve()):
        if not any(path == h or h in path.parents for h in homes):
            places.append(path)
    for place in dict.fromkeys(places):
        found += [place / n for n in _names(place) if n.startswith(NAME_PREFIX)]
    return [p for p in found if not any(p == h or h in p.parents for h in homes)]


def _walk(root: Path) -> Iterator[Path]:
    for count, (dirpath, _, _) in enumerate(os.walk(root)):
        if count >= MAX_WALK:
            return
        yield Path(dirpath)


def _names(place: Path) -> list[str]:
    try:
        return os.listdir(place)
    except OSError:
        return []
