"""Tests for ftpsup.supervisor.status: lease reading and the status table."""

from __future__ import annotations

from pathlib import Path

from ftpsup.config.schema import InstanceConfig
from ftpsup.ports import PortAllocator
from ftpsup.supervisor.lifecycle import InstanceState, Lifecycle, Policy, Retiring
from ftpsup.supervisor.status import (
    Lease,
    draining_lines,
    format_status,
    instance_status,
    read_leases,
    troubled_instances,
)


def config(tmp_path: Path, name: str, address: str) -> InstanceConfig:
    return InstanceConfig(
        name=name,
        source=tmp_path / f"{name}.toml",
        config_dir=tmp_path,
        listen_address=address,
        listen_port=2121,
        pasv_min_port=40000,
        pasv_max_port=40004,
        state_dir=tmp_path / "run",
    )


def test_read_leases_names_owner_and_pid_of_every_held_port(tmp_path: Path) -> None:
    allocator = PortAllocator(tmp_path, 40000, 40004, owner="ipv6")
    first, second = allocator.lease(), allocator.lease()
    assert first is not None
    assert second is not None
    second.release()
    leases = read_leases(tmp_path, [(40000, 40004), (40000, 40004)])
    assert [(lease.port, lease.owner) for lease in leases] == [(first.port, "ipv6")]
    assert leases[0].pid is not None
    first.release()
    assert read_leases(tmp_path, [(40000, 40004)]) == []


def test_read_leases_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert read_leases(tmp_path / "nowhere", [(40000, 40004)]) == []


def test_instance_status_counts_only_its_own_leases_and_lists_draining_pids(
    tmp_path: Path,
) -> None:
    life = Lifecycle(pid=12, started_at=10.0, retiring=(Retiring(11, 99.0),), restarts=2)
    leases = [Lease(40001, "ipv4", 12, None), Lease(40002, "ipv6", 13, None)]
    entry = instance_status(
        config(tmp_path, "ipv4", "127.0.0.1"), life, 70.0, {12: {"sessions": 3}, 11: None}, leases
    )
    assert entry["pasv"] == {"min": 40000, "max": 40004, "size": 5, "leased": 1, "ports": [40001]}
    assert (entry["sessions"], entry["uptime"], entry["restarts"]) == (3, 60.0, 2)
    assert entry["draining"] == [{"pid": 11, "sessions": None, "stop_in": 24.0}]


def test_format_status_prints_a_row_per_instance_and_notes_below(tmp_path: Path) -> None:
    v4 = instance_status(
        config(tmp_path, "ipv4", "127.0.0.1"),
        Lifecycle(pid=12, started_at=0.0, last_exit="killed by SIGKILL", restarts=1),
        3725.0,
        {12: {"sessions": 1}},
        [Lease(40000, "ipv4", 12, None)],
    )
    v6 = instance_status(config(tmp_path, "ipv6", "::1"), Lifecycle(), 3725.0, {}, [])
    data = {
        "supervisor": {"pid": 7, "uptime": 90061.0, "config_dir": "/etc/ftpsup"},
        "instances": [v4, v6],
    }
    lines = format_status(data).splitlines()
    assert lines[0] == "ftpsup supervisor pid 7, up 1d 1:01:01, config /etc/ftpsup"
    assert lines[1].split() == [
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "LISTEN",
        "SESSIONS",
        "PASV",
        "RESTARTS",
    ]
    assert lines[2].split() == [
        "ipv4",
        "STOPPED",
        "12",
        "1:02:05",
        "127.0.0.1:2121",
        "1",
        "1/5",
        "1",
    ]
    assert lines[3].split() == ["ipv6", "STOPPED", "-", "-", "[::1]:2121", "-", "0/5", "0"]
    assert lines[4] == "  ipv4: last exit: killed by SIGKILL"


def test_read_leases_takes_only_ascii_digits_from_a_holder_line(tmp_path: Path) -> None:
    # Lease files are written by every instance: "²" passes str.isdigit and made int() raise.
    allocator = PortAllocator(tmp_path, 40000, 40000, owner="ipv4")
    lease = allocator.lease()
    assert lease is not None
    held = sorted(tmp_path.iterdir())
    assert len(held) == 1
    held[0].write_text("ipv4 \u00b2 \u0663\u0663\n")
    try:
        assert read_leases(tmp_path, [(40000, 40000)]) == [Lease(40000, "ipv4", None, None)]
        held[0].write_text("ipv4 123 1700000000\n")
        assert read_leases(tmp_path, [(40000, 40000)]) == [Lease(40000, "ipv4", 123, 1700000000)]
    finally:
        lease.release()


def test_troubled_instances_are_the_fatal_and_backoff_ones(tmp_path: Path) -> None:
    states = {
        "a": InstanceState.RUNNING,
        "b": InstanceState.FATAL,
        "c": InstanceState.STOPPED,
        "d": InstanceState.BACKOFF,
        "e": InstanceState.STARTING,
    }
    entries = [
        instance_status(config(tmp_path, name, "127.0.0.1"), Lifecycle(state=state), 0.0, {}, [])
        for name, state in states.items()
    ]
    assert troubled_instances({"instances": entries}) == ["b (FATAL)", "d (BACKOFF)"]
    assert troubled_instances({"instances": entries[:1] + entries[2:3]}) == []


def test_draining_lines_name_instance_sessions_and_seconds_to_stopwaitsecs(
    tmp_path: Path,
) -> None:
    policy = Policy(stopwaitsecs=30.0, kill_grace=5.0)
    stopping = Lifecycle(policy, InstanceState.STOPPING, pid=12, stop_at=135.0)
    replaced = Lifecycle(policy, InstanceState.RUNNING, pid=21, retiring=(Retiring(20, 110.0),))
    entries = [
        instance_status(
            config(tmp_path, "ipv4", "127.0.0.1"), stopping, 110.0, {12: {"sessions": 2}}, []
        ),
        instance_status(config(tmp_path, "ipv6", "::1"), replaced, 100.0, {20: None}, []),
        instance_status(config(tmp_path, "idle", "127.0.0.1"), Lifecycle(), 100.0, {}, []),
    ]
    assert entries[0]["stop_in"] == 20.0
    assert draining_lines({"instances": entries}) == {
        "ipv4:12": (2, "ipv4: stopping pid 12: 2 session(s) left, 20 s to stopwaitsecs"),
        "ipv6:20": (None, "ipv6: draining pid 20: sessions unknown, 5 s to stopwaitsecs"),
    }
