"""Process-tree figures from /proc: CPU seconds and memory of a server and its descendants.

Rules:
- Linux only; reads /proc/<pid>/stat and /proc/<pid>/smaps_rollup (proc(5)), nothing else.
- A tree is the root pid plus every process whose parent chain reaches it, found by one scan of
  /proc. A process that exits during a scan is skipped, never an error.
- CPU is utime+stime of each live process plus its cutime+cstime (children it has reaped), so
  the work of forked session processes that came and went is still counted, exactly once.
- Memory is summed over the tree: RSS counts shared pages once per process, PSS divides them
  among their sharers, so PSS is the fair figure for servers that fork a process per session.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class ProcStat:
    """The fields of /proc/<pid>/stat that the harness needs."""

    pid: int
    ppid: int
    start_ticks: int
    cpu_ticks: int


@attrs.frozen
class Memory:
    """Memory summed over a process tree, in KiB."""

    rss_kib: int
    pss_kib: int
    processes: int


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None when the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ")".
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        start_ticks=int(fields[19]),
        cpu_ticks=utime + stime + cutime + cstime,
    )


def _all_stats() -> dict[int, ProcStat]:
    stats: dict[int, ProcStat] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def tree(root: int) -> list[ProcStat]:
    """The root process and all its live descendants (empty when the root is gone)."""
    stats = _all_stats()
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: list[ProcStat] = []
    pending = [root]
    # Every pid is visited once, so the walk ends after at most len(stats) steps.
    seen: set[int] = set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        found.append(stats[pid])
        pending.extend(children.get(pid, ()))
    return found


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by the tree under `root`."""
    return sum(stat.cpu_ticks for stat in tree(root)) / CLOCK_TICKS


def _rollup(pid: int) -> tuple[int, int] | None:
    try:
        text = (PROC / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return None
    rss = pss = 0
    for line in text.splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def memory(root: int) -> Memory:
    """RSS and PSS summed over the tree under `root`."""
    rss = pss = count = 0
    for stat in tree(root):
        rollup = _rollup(stat.pid)
        if rollup is not None:
            rss += rollup[0]
            pss += rollup[1]
            count += 1
    return Memory(rss_kib=rss, pss_kib=pss, processes=count)


def same_process(stat: ProcStat) -> bool:
    """True while the pid still names the process `stat` was read from (no pid reuse)."""
    now = read_stat(stat.pid)
    return now is not None and now.start_ticks == stat.start_ticks
