"""What `ftpsup status` shows: gathered by the supervisor, printed by the command line.

Rules:
1. Passive-port leases are read from the lease files themselves (PortAllocator's holders),
   so status shows what every process really holds, including a draining one, never a copy.
2. The JSON form (`status --json`) is the data the text table is printed from; the table adds
   nothing the JSON lacks.
3. Formatting is pure: `format_status` takes the JSON data and returns text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from ftpsup.config import InstanceConfig
from ftpsup.ports import PortAllocator
from ftpsup.proto.numbers import parse_uint
from ftpsup.supervisor.lifecycle import Lifecycle

_MAX_PID = 2**22  # Linux's pid_max ceiling
_MAX_TIME = 2**63 - 1


@attrs.frozen
class Lease:
    """One passive port held right now, and by whom."""

    port: int
    owner: str
    pid: int | None
    since: int | None


def _parse_holder(port: int, text: str) -> Lease:
    words = text.split()
    owner = words[0] if words else "?"
    # The lease files are writable by every instance: read them as untrusted text.
    pid = parse_uint(words[1], _MAX_PID) if len(words) > 1 else None
    since = parse_uint(words[2], _MAX_TIME) if len(words) > 2 else None
    return Lease(port, owner, pid, since)


def read_leases(lease_dir: Path, ranges: Iterable[tuple[int, int]]) -> list[Lease]:
    """Every port of `ranges` someone holds, read from the lease files (blocking)."""
    found: dict[int, Lease] = {}
    if not lease_dir.is_dir():
        return []
    for lo, hi in sorted(set(ranges)):
        probe = PortAllocator(lease_dir, lo, hi, owner="supervisor")
        for port, text in probe.leases_in_use():
            found[port] = _parse_holder(port, text)
    return [found[port] for port in sorted(found)]


def _sessions(answer: Mapping[str, object] | None) -> int | None:
    if answer is None:
        return None
    value = answer.get("sessions")
    return value if isinstance(value, int) else None


def instance_status(
    config: InstanceConfig,
    life: Lifecycle,
    now: float,
    answers: Mapping[int, Mapping[str, object] | None],
    leases: Iterable[Lease],
) -> dict[str, object]:
    """One instance's entry of the status data."""
    mine = [lease.port for lease in leases if lease.owner == config.name]
    uptime = life.uptime(now)
    retry_in = None
    if life.retry_at is not None:
        retry_in = max(0.0, life.retry_at - now)
    return {
        "name": config.name,
        "state": life.state.value,
        "pid": life.pid,
        "uptime": uptime,
        "listen": {"address": config.listen_address, "port": config.listen_port},
        "sessions": _sessions(answers.get(life.pid)) if life.pid is not None else None,
        "replacement": life.replacement,
        "draining": [
            {"pid": r.pid, "sessions": _sessions(answers.get(r.pid))} for r in life.retiring
        ],
        "pasv": {
            "min": config.pasv_min_port,
            "max": config.pasv_max_port,
            "size": config.pasv_max_port - config.pasv_min_port + 1,
            "leased": len(mine),
            "ports": mine,
        },
        "restarts": life.restarts,
        "failed_starts": life.failed_starts,
        "retry_in": retry_in,
        "last_exit": life.last_exit,
    }


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def _get(mapping: object, key: str) -> object:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _listen(entry: object) -> str:
    address, port = _get(_get(entry, "listen"), "address"), _get(_get(entry, "listen"), "port")
    return f"[{address}]:{port}" if ":" in str(address) else f"{address}:{port}"


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def format_status(data: Mapping[str, object]) -> str:
    """The status table, one line per instance, from `Supervisor.status` data."""
    sup = data.get("supervisor")
    lines = [
        f"ftpsup supervisor pid {_get(sup, 'pid')}, up {_duration(_get(sup, 'uptime'))}, "
        f"config {_get(sup, 'config_dir')}"
    ]
    header = ("NAME", "STATE", "PID", "UPTIME", "LISTEN", "SESSIONS", "PASV", "RESTARTS")
    rows: list[tuple[str, ...]] = [header]
    notes: list[str] = []
    entries = data.get("instances")
    for entry in entries if isinstance(entries, list) else []:
        pasv = _get(entry, "pasv")
        name = str(_get(entry, "name"))
        rows.append(
            (
                name,
                str(_get(entry, "state")),
                _text(_get(entry, "pid")),
                _duration(_get(entry, "uptime")),
                _listen(entry),
                _text(_get(entry, "sessions")),
                f"{_get(pasv, 'leased')}/{_get(pasv, 'size')}",
                str(_get(entry, "restarts")),
            )
        )
        draining = _get(entry, "draining")
        for old in draining if isinstance(draining, list) else []:
            sessions = _text(_get(old, "sessions"))
            notes.append(f"  {name}: pid {_get(old, 'pid')} draining, {sessions} session(s)")
        if _get(entry, "replacement") is not None:
            notes.append(f"  {name}: replacement pid {_get(entry, 'replacement')} starting")
        if _get(entry, "last_exit"):
            notes.append(f"  {name}: last exit: {_get(entry, 'last_exit')}")
        retry = _get(entry, "retry_in")
        if isinstance(retry, int | float):
            notes.append(f"  {name}: next start in {retry:.0f} s")
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return "\n".join(lines + notes)
