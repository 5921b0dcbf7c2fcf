"""The benchmark report: rows, medians, ftpsup/best-peer ratios and targets, as Markdown.

Rules:
- Each cell is "median (min-max)" over the runs; one run shows the value alone.
- The ratio is ftpsup's median over the best peer median of the row: the highest where higher
  is better (MB/s, sessions/s), the lowest where lower is better (memory, CPU, failures).
  Informational rows have no ratio.
- A target (docs/performance.md) is judged only when ftpsup and at least one peer have figures.
"""

from __future__ import annotations

import os
import platform
import ssl
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs

PEER_LABELS = {
    "ftpsup": "ftpsup",
    "vsftpd": "vsftpd",
    "pure-ftpd": "Pure-FTPd",
    "pyftpdlib": "pyftpdlib",
}


@attrs.frozen
class Target:
    """A goal for ftpsup: a ratio to the best peer, a ceiling on its value, or both."""

    text: str
    min_ratio: float | None = None
    max_value: float | None = None


@attrs.frozen
class Row:
    """One table row: `higher_is_better` None marks an informational row."""

    key: str
    label: str
    unit: str
    higher_is_better: bool | None
    target: Target | None = None


# row key -> server -> one value per run
Results = dict[str, dict[str, list[float]]]


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(values: Sequence[float]) -> str:
    """A table cell: "median (min-max)", the value alone for one run, "-" for none."""
    if not values:
        return "-"
    if len(values) == 1:
        return _fmt(values[0])
    return f"{_fmt(statistics.median(values))} ({_fmt(min(values))}-{_fmt(max(values))})"


def _ratio(row: Row, ours: list[float], peers: dict[str, list[float]]) -> tuple[str, float | None]:
    if row.higher_is_better is None or not ours or not peers:
        return "", None
    medians = {name: statistics.median(v) for name, v in peers.items()}
    pick = max if row.higher_is_better else min
    best = pick(medians, key=lambda name: medians[name])
    mine, theirs = statistics.median(ours), medians[best]
    if theirs <= 0:
        # A zero (no failures) or a negative delta (memory noise) gives no meaningful ratio.
        same = "= " if mine == theirs == 0 else "n/a "
        return same + f"(vs {PEER_LABELS[best]} {_fmt(theirs)})", None
    ratio = mine / theirs
    return f"{ratio:.2f}x vs {PEER_LABELS[best]}", ratio


def _judge(row: Row, ours: list[float], ratio: float | None, has_peers: bool) -> str:
    if row.target is None:
        return ""
    verdict = ""
    if ours and has_peers:
        mine = statistics.median(ours)
        met = True
        if row.target.min_ratio is not None:
            met = ratio is not None and ratio >= row.target.min_ratio
        if row.target.max_value is not None:
            met = met and mine <= row.target.max_value
        verdict = ": met" if met else ": NOT met"
    return row.target.text + verdict


def results_table(rows: Sequence[Row], servers: Sequence[str], results: Results) -> str:
    """The main table: one column per server, then the ratio and the target."""
    head = ["row", "unit", *(PEER_LABELS[s] for s in servers), "ftpsup/best peer", "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        by_server = results.get(row.key, {})
        if not any(by_server.values()):
            continue
        ours = by_server.get("ftpsup", [])
        peers = {s: v for s, v in by_server.items() if s != "ftpsup" and v}
        ratio_text, ratio = _ratio(row, ours, peers)
        arrow = {True: " (higher better)", False: " (lower better)", None: ""}
        cells = [row.label, row.unit + arrow[row.higher_is_better]]
        cells += [cell(by_server.get(s, [])) for s in servers]
        cells += [ratio_text, _judge(row, ours, ratio, bool(peers))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _command(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def machine() -> dict[str, str]:
    """The facts about this machine that a reader needs to compare figures."""
    mem = "?"
    cpu = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "CPUs (nproc)": str(os.cpu_count()),
        "CPU model": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "OpenSSL (openssl)": _command(["openssl", "version"]),
        "OpenSSL (Python ssl)": ssl.OPENSSL_VERSION,
        "Python": platform.python_version(),
        "curl": _command(["curl", "--version"]),
    }


def key_value_table(head: tuple[str, str], pairs: dict[str, str]) -> str:
    """A two-column Markdown table."""
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in pairs.items()]
    return "\n".join(lines)
