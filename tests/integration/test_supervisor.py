"""The supervisor as an admin runs it: `ftpsup start all`, kill -9, restart, reload, stop all.

Every step is the real `python -m ftpsup` command in a subprocess; clients are ftplib, curl
and hand-made control connections on 127.0.0.1 and ::1. One supervisor with an ipv4 and an
ipv6 instance (same port number on each stack, one passive range of 5 ports) serves the module;
tests that need a fresh one start their own. Every wait is bounded, and every process is
stopped at the end (stop all, then SIGKILL by pid for anything left).
"""

from __future__ import annotations

import concurrent.futures
import ftplib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ftpsup.ports import PortAllocator
from tests.integration.raw_ftp import recv_all
from tests.integration.servers import PASSWORD, USER, add_user, wait_until
from tests.integration.supervisors import (
    HOSTS,
    STOPWAITSECS,
    TIMEOUT,
    Sup,
    alive,
    own_supervisor,
    raw_session,
    sha,
    slow_download,
)

BIG = 12 * 1024 * 1024


@pytest.fixture(scope="module")
def sup() -> Iterator[Sup]:
    """One supervisor for the module, with a 12 MB file in alice's home."""
    with own_supervisor() as s:
        (s.home / "big.bin").write_bytes(random.randbytes(BIG))
        result = s.ftpsup("start", "all")
        assert result.returncode == 0, result.stdout + result.stderr
        yield s


def listeners_in_range(lo: int, hi: int) -> list[int]:
    """Ports of [lo, hi] with a LISTEN socket, IPv4 and IPv6 (one entry per socket)."""
    tables = ("/proc/net/tcp", "/proc/net/tcp6")
    return [port for table in tables for port, _ in _listening_sockets(table, lo, hi)]


# -- start, status, shared users -----------------------------------------------------------


def test_start_all_serves_one_user_on_both_stacks_and_status_shows_both(sup: Sup) -> None:
    for name, host in HOSTS.items():
        with sup.connect(name) as ftp:
            assert "big.bin" in ftp.nlst()
        url_host = f"[{host}]" if ":" in host else host
        url = f"ftp://{USER}:{PASSWORD.replace(' ', '%20')}@{url_host}:{sup.port}/"
        listing = subprocess.run(
            ["curl", "-sS", "--max-time", "20", url], capture_output=True, text=True, timeout=30
        )
        assert "big.bin" in listing.stdout, listing.stderr
    data = sup.status()
    states = {e["name"]: (e["state"], e["listen"]["address"]) for e in data["instances"]}
    assert states == {"ipv4": ("RUNNING", "127.0.0.1"), "ipv6": ("RUNNING", "::1")}
    assert all(alive(e["pid"]) for e in data["instances"])
    text = sup.ftpsup("status")
    print(text.stdout)  # the closing note of issue 3 quotes this
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert any(line.split()[:2] == ["ipv4", "RUNNING"] for line in lines)
    assert any(line.split()[:2] == ["ipv6", "RUNNING"] for line in lines)
    assert f"[::1]:{sup.port}" in text.stdout
    assert f"127.0.0.1:{sup.port}" in text.stdout


def test_instances_write_isolated_logs_and_reopen_them(sup: Sup) -> None:
    log_dir = sup.base / "log"
    with sup.connect("ipv4"):
        pass
    wait_until(
        lambda: "CONNECT" in (log_dir / "ipv4" / "ftpsup.log").read_text(), "log", timeout=10
    )
    assert (log_dir / "supervisor.log").read_text().count("RUNNING") >= 2
    (log_dir / "ipv6" / "ftpsup.log").rename(log_dir / "ipv6" / "ftpsup.log.1")
    result = sup.ftpsup("reopen-logs")
    assert result.returncode == 0
    assert "reopened" in result.stdout
    path = log_dir / "ipv6" / "ftpsup.log"
    wait_until(
        lambda: path.exists() and "log files reopened" in path.read_text(), "reopen", timeout=10
    )


def test_user_added_while_running_logs_in_on_both_stacks(sup: Sup) -> None:
    add_user(sup.etc, "bob", "bob secret", sup.base / "home" / "bob")
    for name in HOSTS:
        with sup.connect(name, user="bob", password="bob secret") as ftp:
            assert ftp.pwd() == "/"


# -- crash, restart, drain -----------------------------------------------------------------


def test_kill_9_instance_comes_back_and_the_other_stack_is_untouched(sup: Sup) -> None:
    expected = sha((sup.home / "big.bin").read_bytes())
    old_pid, other_pid = sup.pid("ipv6"), sup.pid("ipv4")
    restarts = sup.instance("ipv6")["restarts"]
    holder = raw_session("::1", sup.port)
    assert holder.command("EPSV").code == 229
    held = [lease for lease in sup.status()["leases"] if lease["pid"] == old_pid]
    assert len(held) == 1
    assert held[0]["owner"] == "ipv6"
    started, release = threading.Event(), threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # The ipv4 download stays open across the kill and the restart of ipv6.
        transfer = pool.submit(slow_download, sup, "ipv4", started, release)
        try:
            assert started.wait(10)
            os.kill(old_pid, signal.SIGKILL)
            # That the restart comes at once, without a backoff, is the lifecycle's rule, tested
            # with explicit times in tests/supervisor/test_lifecycle.py; here only that it comes.
            wait_until(
                lambda: sup.instance("ipv6")["state"] == "RUNNING" and sup.pid("ipv6") != old_pid,
                "ipv6 to come back",
                timeout=10,
            )
        finally:
            release.set()
        assert sha(transfer.result(timeout=TIMEOUT)) == expected
    holder.close()
    entry = sup.instance("ipv6")
    assert (entry["restarts"], entry["last_exit"]) == (restarts + 1, "killed by SIGKILL")
    assert sup.pid("ipv4") == other_pid
    assert not [lease for lease in sup.status()["leases"] if lease["pid"] == old_pid]
    probe = PortAllocator(sup.run_dir / "ports", held[0]["port"], held[0]["port"], owner="test")
    lease = probe.lease()
    assert lease is not None, "the killed instance's port is still held"
    lease.release()
    with sup.connect("ipv6") as ftp:
        assert "big.bin" in ftp.nlst()


def test_restart_ipv6_during_transfers_on_both_stacks(sup: Sup) -> None:
    expected = sha((sup.home / "big.bin").read_bytes())
    old6, old4 = sup.pid("ipv6"), sup.pid("ipv4")
    started = {name: threading.Event() for name in HOSTS}
    restarted = threading.Event()
    # The downloads hold still until the checks below are done: a paced download could end
    # before a restart slowed by a busy machine, leaving nothing to drain.
    release = threading.Event()

    def keep_connecting() -> list[str]:
        """Log in to ::1 again and again until the restart is over; collect the greetings."""
        greetings: list[str] = []
        while not restarted.is_set() or not greetings:
            with sup.connect("ipv6") as ftp:
                greetings.append(ftp.getwelcome())
                ftp.voidcmd("NOOP")
        return greetings

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        transfers = {n: pool.submit(slow_download, sup, n, started[n], release) for n in HOSTS}
        try:
            assert all(event.wait(10) for event in started.values())
            clients = pool.submit(keep_connecting)
            result = sup.ftpsup("restart", "ipv6")
            restarted.set()
            assert result.returncode == 0, result.stdout + result.stderr
            assert "ipv6: restarted" in result.stdout
            during = sup.instance("ipv6")
            assert old6 in [d["pid"] for d in during["draining"]]
        finally:
            restarted.set()
            release.set()
        assert sha(transfers["ipv4"].result(timeout=TIMEOUT)) == expected
        assert sha(transfers["ipv6"].result(timeout=TIMEOUT)) == expected
        assert all(g.startswith("220") for g in clients.result(timeout=TIMEOUT))
    assert sup.pid("ipv4") == old4
    assert sup.pid("ipv6") != old6
    wait_until(lambda: not alive(old6), "the old ipv6 process to end", timeout=STOPWAITSECS + 2)


def test_stop_drains_an_idle_session_for_stopwaitsecs_then_cuts_it(sup: Sup) -> None:
    # The timing itself (alive just before stopwaitsecs, cut just after) is tested under a
    # mock clock in tests/server/test_drain.py; here, that a restart drains rather than cuts.
    session = raw_session("::1", sup.port, timeout=30)
    result = sup.ftpsup("restart", "ipv6")
    assert result.returncode == 0
    assert session.command("NOOP").code == 200, "the restart cut the session at once"
    assert session.is_closed(timeout=STOPWAITSECS + 30), "the session outlived stopwaitsecs"
    session.close()


def test_restart_of_a_stopped_instance_starts_it(sup: Sup) -> None:
    assert sup.ftpsup("stop", "ipv6").returncode == 0
    assert sup.instance("ipv6")["state"] == "STOPPED"

    result = sup.ftpsup("restart", "ipv6")

    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: sup.instance("ipv6")["state"] == "RUNNING", "ipv6 to run", timeout=10)
    with sup.connect("ipv6") as ftp:
        assert ftp.voidcmd("NOOP").startswith("200")


# -- the shared passive-port allocator -----------------------------------------------------


def test_shared_range_hands_each_port_to_one_session_and_surplus_gets_425(sup: Sup) -> None:
    lo, hi = sup.pasv
    sessions = [raw_session(HOSTS[n], sup.port) for n in ["ipv4", "ipv6"] * 6]
    try:
        with concurrent.futures.ThreadPoolExecutor(len(sessions)) as pool:
            replies = list(pool.map(lambda s: s.command("EPSV"), sessions))
        granted = [r for r in replies if r.code == 229]
        assert len(granted) == 5
        assert [r.code for r in replies if r.code != 229] == [425] * 7
        ports = sorted(int(r.lines[0].split("|")[3]) for r in granted)
        assert len(set(ports)) == 5
        assert all(lo <= p <= hi for p in ports)
        data = sup.status()
        pids = {e["name"]: e["pid"] for e in data["instances"]}
        assert sorted(lease["port"] for lease in data["leases"]) == ports
        assert all(pids[lease["owner"]] == lease["pid"] for lease in data["leases"])
        assert sum(e["pasv"]["leased"] for e in data["instances"]) == 5
        assert sorted(listeners_in_range(lo, hi)) == ports
    finally:
        for s in sessions:
            s.close()
    wait_until(lambda: not sup.status()["leases"], "the leases to come back", timeout=10)


def _listening_sockets(table: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """(port, inode) of every LISTEN socket on a port of [lo, hi] in one /proc/net table."""
    found = []
    with open(table) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and lo <= port <= hi:
                found.append((port, int(fields[9])))
    return found


def slow_nlst(ftp: ftplib.FTP, listener_seen: Callable[[], None]) -> bytes:
    """NLST in EPSV mode, connecting only once `listener_seen` says the listener was seen."""
    assert ftp.sock is not None
    host = str(ftp.sock.getpeername()[0])
    port = ftplib.parse229(ftp.sendcmd("EPSV"), (host, 0))[1]
    listener_seen()
    with socket.create_connection((host, port), timeout=10) as conn:
        assert ftp.sendcmd("NLST").startswith("150")
        data = recv_all(conn)
    ftp.voidresp()
    return data


def test_concurrent_passive_sessions_never_listen_on_one_port_twice(sup: Sup) -> None:
    """Watch the kernel's socket tables while 16 sessions on both stacks churn 5 ports.

    Within one family the kernel itself refuses a second listener on a port; across
    families only the shared allocator prevents it. Each listening socket (by inode) is
    known to have existed from the end of the table read that first showed it to the start
    of the read that last showed it, so an overlap of those intervals between an IPv4 and
    an IPv6 socket on one port proves both listened at once. A client connects to its
    listener only after two whole passes of the sampler began after the EPSV reply, so
    every listener is seen at least twice however slowly the tables are read.
    """
    lo, hi = sup.pasv
    done = threading.Event()
    refusals: list[str] = []
    seen: dict[tuple[str, int, int], list[float]] = {}
    # Passes over both tables begun and finished, counted by the sampler alone; it notifies
    # `pass_done` at the end of each.
    passes = {"begun": 0, "finished": 0}
    pass_done = threading.Condition()

    def sample() -> None:
        while not done.is_set():
            with pass_done:
                passes["begun"] += 1
            for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                start = time.monotonic()
                found = _listening_sockets(table, lo, hi)
                end = time.monotonic()
                for port, inode in found:
                    seen.setdefault((table, port, inode), [end, start])[1] = start
            with pass_done:
                passes["finished"] += 1
                pass_done.notify_all()

    def listener_seen() -> None:
        # Two passes begun after the reply, and so after the listener opened, have finished.
        with pass_done:
            wanted = passes["begun"] + 2
            assert pass_done.wait_for(lambda: passes["finished"] >= wanted, TIMEOUT), (
                "the sampler stopped"
            )

    def client(name: str) -> int:
        ok = 0
        deadline = time.monotonic() + TIMEOUT
        with sup.connect(name) as ftp:
            # Bounded by time as well: 16 sessions share 5 ports, each held for two passes.
            for _ in range(5000):
                if ok == 8 or time.monotonic() > deadline:
                    break
                try:
                    listing = slow_nlst(ftp, listener_seen)
                except ftplib.error_temp as exc:
                    refusals.append(str(exc)[:3])
                    time.sleep(0.01)
                    continue
                assert b"big.bin" in listing
                ok += 1
        return ok

    with concurrent.futures.ThreadPoolExecutor(17) as pool:
        sampler = pool.submit(sample)
        results = list(pool.map(client, ["ipv4", "ipv6"] * 8))
        done.set()
        sampler.result(timeout=10)
    assert results == [8] * 16
    assert set(refusals) <= {"425"}
    lived = {key: span for key, span in seen.items() if span[0] <= span[1]}
    assert {table for table, _, _ in lived} == {"/proc/net/tcp", "/proc/net/tcp6"}, (
        "too few sightings to judge; the sampler is too slow"
    )
    both = [
        (port, a, b)
        for (t4, port, _), a in lived.items()
        if t4 == "/proc/net/tcp"
        for (t6, port6, _), b in lived.items()
        if t6 == "/proc/net/tcp6" and port6 == port and a[0] <= b[1] and b[0] <= a[1]
    ]
    assert both == [], f"ipv4 and ipv6 listened on one port at once: {both[:3]}"


# -- reload --------------------------------------------------------------------------------


def test_reload_with_a_broken_file_keeps_the_running_config_and_says_why(sup: Sup) -> None:
    pids = {name: sup.pid(name) for name in HOSTS}
    original = (sup.etc / "ipv6.toml").read_text()
    try:
        (sup.etc / "ipv6.toml").write_text(original + 'idle_session_timeout = "soon"\n')
        result = sup.ftpsup("reload")
        assert result.returncode == 1
        assert "reload refused" in result.stderr
        problem = f"{sup.etc / 'ipv6.toml'}: idle_session_timeout: expected an integer"
        assert problem in result.stderr
    finally:
        (sup.etc / "ipv6.toml").write_text(original)
    assert {name: sup.pid(name) for name in HOSTS} == pids
    with sup.connect("ipv6") as ftp:
        assert "big.bin" in ftp.nlst()


def test_reload_with_a_new_banner_serves_it_to_new_sessions_and_keeps_old_ones(sup: Sup) -> None:
    old_session = sup.connect("ipv4")
    assert old_session.getwelcome() == "220 old banner"
    old4, old6 = sup.pid("ipv4"), sup.pid("ipv6")
    sup.set_key("ipv4", "ftpd_banner", "new banner")
    result = sup.ftpsup("reload")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ipv4: restarted" in result.stdout
    assert "ipv6: unchanged" in result.stdout
    with sup.connect("ipv4") as ftp:
        assert ftp.getwelcome() == "220 new banner"
    with sup.connect("ipv6") as ftp:
        assert ftp.getwelcome() == "220 old banner"
    assert sup.pid("ipv6") == old6
    assert old4 in [d["pid"] for d in sup.instance("ipv4")["draining"]]
    assert old_session.voidcmd("NOOP").startswith("200")
    assert "big.bin" in old_session.nlst()
    old_session.quit()
    wait_until(lambda: not alive(old4), "the old ipv4 process to end after its session", timeout=10)
