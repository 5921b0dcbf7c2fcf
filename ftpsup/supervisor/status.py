"""What `ftpsup status` shows: gathered by the supervisor, printed by the command line.

Rules:
1. Passive-port leases are read from the lease files themselves (PortAllocator's holders),
   so status shows what every process really holds, including a draining one, never a copy.
2. The JSON form (`status --json`) is the data the text table is printed from; the table adds
   nothing the JSON lacks.
3. Formatting is pure: `format_status` takes the JSON data and returns text; so are
   `troubled_instances` (what makes `ftpsup status` exit 1) and `draining_lines` (what
   `ftpsup stop` prints while instances drain).
4. `stop_in` is the seconds left of a draining process's stopwaitsecs: when the instance ends
   the sessions still open (the supervisor kills it kill_grace later).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from ftpsup.config.schema import InstanceConfig
from ftpsup.ports import PortAllocator
from ftpsup.proto.numbers import parse_uint
from ftpsup.supervisor.lifecycle import InstanceState, Lifecycle

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
    grace = life.policy.kill_grace
    stop_in = None
    if life.state is InstanceState.STOPPING and life.stop_at is not None:
        stop_in = max(0.0, life.stop_at - grace - now)
    return {
        "name": config.name,
        "state": life.state.value,
        "pid": life.pid,
        "uptime": uptime,
        "listen": {"address": config.listen_address, "port": config.listen_port},
        "sessions": _sessions(answers.get(life.pid)) if life.pid is not None else None,
        "replacement": life.replacement,
        "stop_in": stop_in,
        "draining": [
            {
                "pid": r.pid,
                "sessions": _sessions(answers.get(r.pid)),
                "stop_in": max(0.0, r.kill_at - grace - now),
            }
            for r in life.retiring
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


TROUBLED_STATES = frozenset({InstanceState.FATAL.value, InstanceState.BACKOFF.value})


def _entries(data: Mapping[str, object]) -> list[object]:
    entries = data.get("instances")
    return entries if isinstance(entries, list) else []


def troubled_instances(data: Mapping[str, object]) -> list[str]:
    """The instances that should serve and cannot (FATAL or BACKOFF), as "name (STATE)"."""
    found = []
    for entry in _entries(data):
        state = _get(entry, "state")
        if state in TROUBLED_STATES:
            found.append(f"{_get(entry, 'name')} ({state})")
    return found


def _drain_line(name: str, what: str, process: object) -> str:
    sessions = _get(process, "sessions")
    left = "sessions unknown" if sessions is None else f"{sessions} session(s) left"
    stop_in = _get(process, "stop_in")
    when = f", {stop_in:.0f} s to stopwaitsecs" if isinstance(stop_in, int | float) else ""
    return f"{name}: {what} pid {_get(process, 'pid')}: {left}{when}"


def draining_lines(data: Mapping[str, object]) -> dict[str, tuple[object, str]]:
    """Each draining process (stopping, or replaced): "name:pid" -> (its sessions, a line)."""
    lines: dict[str, tuple[object, str]] = {}
    for entry in _entries(data):
        name = str(_get(entry, "name"))
        if _get(entry, "state") == InstanceState.STOPPING.value and _get(entry, "pid"):
            line = _drain_line(name, "stopping", entry)
            lines[f"{name}:{_get(entry, 'pid')}"] = (_get(entry, "sessions"), line)
        draining = _get(entry, "draining")
        for old in draining if isinstance(draining, list) else []:
            line = _drain_line(name, "draining", old)
            lines[f"{name}:{_get(old, 'pid')}"] = (_get(old, "sessions"), line)
    return lines
