"""FTP load client: bursts of sessions, idle logged-in sessions, and login latency, raw asyncio.

Usage (prints one JSON object):
  python -m bench.loadclient burst --port P --user U --clients 1000 --server-pid PID
  python -m bench.loadclient idle  --port P --user U --sessions 500 --server-pid PID
  python -m bench.loadclient login --port P --user U --samples 10
The password comes from the FTPBENCH_PASSWORD environment variable (not argv, which `ps` shows).

Rules:
- Every wait is bounded: the greeting by --greeting-timeout, each session as a whole by
  --session-timeout, the whole burst by --burst-timeout. A client that has no 220 greeting
  within its bound (the kernel may have dropped its handshake) counts as failed.
- A session is connect, 220, USER, PASS, PWD, TYPE I, PASV + LIST, PASV + RETR, QUIT; any
  unexpected reply fails it, and its step names the failure.
- Replies are parsed as RFC 959 section 4.2 says: "ddd-" opens a multi-line reply, which ends
  at a line starting "ddd ".
- Server CPU is the utime+stime delta of the server's process tree across the burst, read
  after its session processes have been reaped (bounded wait).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import attrs

from bench import procstats

MAX_REPLY_LINES = 200
DATA_CHUNK = 256 * 1024
_PASV = re.compile(rb"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")


class StepFailed(Exception):
    """A session step got no reply, a wrong reply, or a wrong byte count."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step


@attrs.frozen
class Target:
    """Where and as whom to log in, and the file each session downloads."""

    host: str
    port: int
    user: str
    password: str
    retr_name: str = "64k.bin"
    retr_size: int = 65536


GREETING_TIMEOUT = 10.0
SESSION_TIMEOUT = 240.0
BURST_TIMEOUT = 300.0


@attrs.frozen
class Bounds:
    """Time limits in seconds; each wait of a session falls under one of them."""

    greeting: float = GREETING_TIMEOUT
    session: float = SESSION_TIMEOUT
    burst: float = BURST_TIMEOUT


class Control:
    """One control connection: send a command, read its (possibly multi-line) reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def reply(self, step: str) -> tuple[int, bytes]:
        """Read one reply; returns its code and its last line."""
        line = await self.reader.readline()
        if len(line) < 4:
            raise StepFailed(step, "connection closed")
        code = line[:3]
        if line[3:4] == b"-":
            for _ in range(MAX_REPLY_LINES):
                line = await self.reader.readline()
                if not line:
                    raise StepFailed(step, "connection closed in a multi-line reply")
                if line[:3] == code and line[3:4] == b" ":
                    break
            else:
                raise StepFailed(step, "multi-line reply too long")
        try:
            return int(code), line
        except ValueError:
            raise StepFailed(step, f"not a reply: {line[:60]!r}") from None

    async def command(self, line: str, expect: tuple[int, ...], step: str) -> bytes:
        """Send `line` and read the reply; raises StepFailed(step) unless its code is expected."""
        self.writer.write(line.encode() + b"\r\n")
        code, text = await self.reply(step)
        if code not in expect:
            raise StepFailed(step, text.decode(errors="replace").strip())
        return text

    def close(self) -> None:
        """Close the connection without waiting."""
        self.writer.close()


async def open_control(target: Target, bounds: Bounds) -> Control:
    """Connect and read the greeting within the greeting bound."""
    try:
        async with asyncio.timeout(bounds.greeting):
            reader, writer = await asyncio.open_connection(target.host, target.port)
            control = Control(reader, writer)
            try:
                code, text = await control.reply("greeting")
            except BaseException:
                control.close()
                raise
    except TimeoutError:
        raise StepFailed("greeting", "no 220 within the bound") from None
    except OSError as exc:
        raise StepFailed("greeting", f"connect: {exc}") from None
    if code != 220:
        control.close()
        raise StepFailed("greeting", text.decode(errors="replace").strip())
    return control


async def login(control: Control, target: Target) -> None:
    """USER and PASS; raises StepFailed("login") unless the server answers 230."""
    await control.command(f"USER {target.user}", (331, 230), "login")
    await control.command(f"PASS {target.password}", (230,), "login")


async def transfer(control: Control, target: Target, command: str, step: str) -> int:
    """PASV, connect the data channel, send `command`, read to EOF; returns the byte count."""
    text = await control.command("PASV", (227,), step)
    found = _PASV.search(text[4:])
    if found is None:
        raise StepFailed(step, f"bad 227 reply {text!r}")
    port = int(found[5]) * 256 + int(found[6])
    # The data channel goes to the control host: every server here is on loopback.
    try:
        reader, writer = await asyncio.open_connection(target.host, port)
    except OSError as exc:
        raise StepFailed(step, f"data connection: {exc}") from None
    try:
        await control.command(command, (125, 150), step)
        received = 0
        while chunk := await reader.read(DATA_CHUNK):
            received += len(chunk)
    finally:
        writer.close()
    code, text = await control.reply(step)
    if code not in (226, 250):
        raise StepFailed(step, text.decode(errors="replace").strip())
    return received


async def full_session(target: Target, bounds: Bounds) -> None:
    """One complete session of row d); raises StepFailed naming the step that failed."""
    control = await open_control(target, bounds)
    try:
        async with asyncio.timeout(bounds.session):
            await login(control, target)
            await control.command("PWD", (257,), "pwd")
            await control.command("TYPE I", (200,), "type")
            await transfer(control, target, "LIST", "list")
            got = await transfer(control, target, f"RETR {target.retr_name}", "retr")
            if got != target.retr_size:
                raise StepFailed("retr", f"{got} bytes, expected {target.retr_size}")
            await control.command("QUIT", (221,), "quit")
    except TimeoutError:
        raise StepFailed("session", "session bound exceeded") from None
    except OSError as exc:
        raise StepFailed("session", str(exc)) from None
    finally:
        control.close()


async def _outcome(session: Callable[[], Awaitable[None]]) -> str:
    try:
        await session()
    except StepFailed as exc:
        return exc.step
    return "ok"


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _settle(server_pid: int, processes: int, limit: float) -> None:
    """Wait (bounded) until forked session processes are gone and their CPU is reaped."""
    end = time.monotonic() + limit
    # /proc offers no event for "a process exited", so this polls, with a deadline.
    while time.monotonic() < end and len(procstats.tree(server_pid)) > processes:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def burst(target: Target, clients: int, server_pid: int, bounds: Bounds) -> dict[str, object]:
    """Row d): `clients` sessions released at once; wall time, sessions/s, failures, CPU."""
    await _outcome(lambda: full_session(target, bounds))  # warm-up, not counted
    await asyncio.sleep(0.2)
    processes = len(procstats.tree(server_pid))
    start = asyncio.Event()

    async def one() -> str:
        await start.wait()
        return await _outcome(lambda: full_session(target, bounds))

    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    await asyncio.sleep(0.2)  # let every task reach the starting line
    cpu_before, client_before = procstats.cpu_seconds(server_pid), _client_cpu()
    began = time.perf_counter()
    start.set()
    done, pending = await asyncio.wait(tasks, timeout=bounds.burst)
    wall = time.perf_counter() - began
    for task in pending:
        task.cancel()
    outcomes = Counter(task.result() for task in done)
    if pending:
        outcomes["burst-timeout"] += len(pending)
    await _settle(server_pid, processes, 5.0)
    ok = outcomes.pop("ok", 0)
    return {
        "clients": clients,
        "ok": ok,
        "failures": sum(outcomes.values()),
        "failed_steps": dict(outcomes),
        "wall_s": wall,
        "sessions_per_s": ok / wall,
        "server_cpu_s": procstats.cpu_seconds(server_pid) - cpu_before,
        "client_cpu_s": _client_cpu() - client_before,
    }


async def idle(target: Target, sessions: int, server_pid: int, bounds: Bounds) -> dict[str, object]:
    """Row e): memory of `sessions` logged-in idle sessions, as a delta per session."""
    await _outcome(lambda: full_session(target, bounds))  # warm-up: load every code path
    await asyncio.sleep(0.5)
    before = procstats.memory(server_pid)
    controls: list[Control] = []
    failures: Counter[str] = Counter()
    # A few at a time: this row measures memory, not how a burst of logins is absorbed.
    gate = asyncio.Semaphore(32)

    async def open_idle() -> None:
        async with gate:
            try:
                control = await open_control(target, bounds)
            except StepFailed as exc:
                failures[exc.step] += 1
                return
            controls.append(control)
            try:
                async with asyncio.timeout(bounds.session):
                    await login(control, target)
                    await control.command("PWD", (257,), "pwd")
            except StepFailed as exc:
                failures[exc.step] += 1
            except (TimeoutError, OSError):
                failures["login"] += 1

    try:
        await asyncio.wait_for(
            asyncio.gather(*(open_idle() for _ in range(sessions))), bounds.burst
        )
        await asyncio.sleep(1.0)
        after = procstats.memory(server_pid)
        held = sessions - sum(failures.values())
    finally:
        for control in controls:
            control.writer.write(b"QUIT\r\n")
        await asyncio.sleep(0.2)
        for control in controls:
            control.close()
        # The next row starts from a quiet server: forked session processes have exited.
        await _settle(server_pid, before.processes, 5.0)
    per = max(held, 1)
    return {
        "sessions": sessions,
        "held": held,
        "failures": sum(failures.values()),
        "failed_steps": dict(failures),
        "rss_kib_per_session": (after.rss_kib - before.rss_kib) / per,
        "pss_kib_per_session": (after.pss_kib - before.pss_kib) / per,
        "processes_before": before.processes,
        "processes_after": after.processes,
    }


async def login_latency(target: Target, samples: int, bounds: Bounds) -> dict[str, object]:
    """Login cost as a client sees it: PASS sent to 230 received, sequential sessions."""
    times: list[float] = []
    for _ in range(samples):
        control = await open_control(target, bounds)
        try:
            async with asyncio.timeout(bounds.session):
                await control.command(f"USER {target.user}", (331, 230), "login")
                began = time.perf_counter()
                await control.command(f"PASS {target.password}", (230,), "login")
                times.append((time.perf_counter() - began) * 1000)
                await control.command("QUIT", (221,), "quit")
        finally:
            control.close()
    return {"samples": samples, "pass_ms": times, "median_ms": statistics.median(times)}


def raise_fd_limit(needed: int) -> None:
    """Lift RLIMIT_NOFILE to at least `needed` (the hard limit too, when privileged)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError):
            needed = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def main(argv: list[str] | None = None) -> int:
    """Run one mode and print its result as one JSON line; exit 1 when the mode failed."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadclient")
    parser.add_argument("mode", choices=("burst", "idle", "login"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--server-pid", type=int, default=0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--greeting-timeout", type=float, default=GREETING_TIMEOUT)
    parser.add_argument("--session-timeout", type=float, default=SESSION_TIMEOUT)
    parser.add_argument("--burst-timeout", type=float, default=BURST_TIMEOUT)
    args = parser.parse_args(argv)
    password = os.environ.get("FTPBENCH_PASSWORD", "")
    target = Target(host=args.host, port=args.port, user=args.user, password=password)
    bounds = Bounds(args.greeting_timeout, args.session_timeout, args.burst_timeout)
    if args.mode in ("burst", "idle") and args.server_pid <= 0:
        parser.error(f"{args.mode} needs --server-pid")
    raise_fd_limit(2 * max(args.clients, args.sessions) + 256)
    result: dict[str, object]
    try:
        if args.mode == "burst":
            result = asyncio.run(burst(target, args.clients, args.server_pid, bounds))
        elif args.mode == "idle":
            result = asyncio.run(idle(target, args.sessions, args.server_pid, bounds))
        else:
            result = asyncio.run(login_latency(target, args.samples, bounds))
    except (StepFailed, TimeoutError, OSError) as exc:
        result = {"error": str(exc) or type(exc).__name__}
    json.dump(result, sys.stdout)
    print()
    return 1 if "error" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
