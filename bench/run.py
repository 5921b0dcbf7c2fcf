"""One command for the whole benchmark: start each server, measure every row, write the table.

Usage (from the repository root, as root for vsftpd and Pure-FTPd):
  python -m bench.run                      # full: 1 GiB, N=100/500/1000, 500 idle, 3 runs
  python -m bench.run --quick              # smoke: 64 MiB, N=20/50, 50 idle, 1 run
  python -m bench.run --rows a,b,d --runs 5 --only ftpsup,pyftpdlib

Rules:
- Runs are the outer loop and servers the inner one, each server started fresh for each run
  and stopped in a finally block, so drift on a shared machine hits every server alike.
- A missing peer is skipped with a note; a row that fails for a server becomes a note, never
  a number; a server that dies is noted and its remaining rows in that run are skipped.
- The table goes to stdout and to bench/results/ (latest.md, or quick.md for --quick), with
  the raw figures beside it as JSON; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

import attrs

from bench import report, servers, transfers
from bench.loadclient import raise_fd_limit
from bench.report import Results, Row, Target
from bench.servers import REPO, Running
from bench.workspace import BIG_NAME, HOST, SetupError, Workspace, workspace

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ALL_ROWS = ("a", "b", "c", "d", "e", "f")


@attrs.frozen
class Plan:
    """What one invocation measures."""

    quick: bool
    runs: int
    transfers: int
    rows: frozenset[str]
    servers: tuple[str, ...]
    size: int
    clients: tuple[int, ...]
    idle: int
    login_samples: int
    greeting_timeout: float
    pasv_min: int
    pasv_max: int
    output: Path


@attrs.define
class Collected:
    """Figures and facts gathered while the benchmark runs."""

    results: Results = attrs.Factory(dict)
    notes: list[str] = attrs.Factory(list)
    tls: dict[str, str] = attrs.Factory(dict)
    checks: dict[str, str] = attrs.Factory(dict)
    versions: dict[str, str] = attrs.Factory(dict)

    def add(self, key: str, server: str, value: float) -> None:
        """Record one run's value of a row for a server."""
        self.results.setdefault(key, {}).setdefault(server, []).append(value)


class RowError(Exception):
    """A load-client row failed; the message says how."""


def progress(text: str) -> None:
    """One progress line on stderr (stdout carries only the table)."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


def build_rows(plan: Plan) -> list[Row]:
    """The table rows this plan measures, in order, with their directions and targets."""
    rows = [Row("login_ms", "login cost: PASS to 230", "ms", False)]
    transfer_rows = [
        ("a", "retr_plain", "a) RETR plain", Target(">= 1.0x", 1.0)),
        ("b", "stor_plain", "b) STOR plain", Target(">= 1.2x", 1.2)),
        ("c", "retr_tls", "c) RETR FTPS PROT P", Target(">= 1.0x", 1.0)),
        ("c", "stor_tls", "c) STOR FTPS PROT P", Target(">= 1.2x", 1.2)),
    ]
    for letter, key, label, target in transfer_rows:
        if letter in plan.rows:
            rows += [
                Row(key, label, "MB/s", True, target),
                Row(f"{key}_server_cpu", f"{label}: server CPU per GiB", "s", False),
                Row(f"{key}_client_cpu", f"{label}: curl CPU per GiB", "s", None),
            ]
    for n in plan.clients if "d" in plan.rows else ():
        big = n >= 1000
        rows += [
            Row(f"d{n}_rate", f"d) N={n} sessions/s", "1/s", True,
                Target(">= 1.5x", 1.5) if big else None),
            Row(f"d{n}_fail", f"d) N={n} failures", "count", False,
                Target("0", max_value=0) if big else None),
            Row(f"d{n}_wall", f"d) N={n} wall time", "s", False),
            Row(f"d{n}_cpu", f"d) N={n} server CPU", "s", False),
            Row(f"d{n}_client", f"d) N={n} load-client CPU", "s", None),
        ]  # fmt: skip
    if "e" in plan.rows:
        rows += [
            Row("e_pss", f"e) idle memory/session, PSS ({plan.idle} sessions)", "KiB", False,
                Target("<= 8 KiB", max_value=8)),
            Row("e_rss", f"e) idle memory/session, RSS ({plan.idle} sessions)", "KiB", False),
        ]  # fmt: skip
    return rows


def loadclient(mode: str, running: Running, ws: Workspace, args: list[str]) -> dict[str, object]:
    """Run bench.loadclient `mode` on the server; returns its JSON result or raises RowError."""
    argv = [
        sys.executable, "-m", "bench.loadclient", mode, "--host", HOST,
        "--port", str(running.port), "--user", running.user,
        "--server-pid", str(running.proc.pid), *args,
    ]  # fmt: skip
    env = {**os.environ, "FTPBENCH_PASSWORD": ws.password}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    except subprocess.TimeoutExpired as exc:
        raise RowError(f"load client {mode} did not finish in 900 s") from exc
    try:
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        last = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise RowError(f"load client {mode}: {last[0]}") from None
    if "error" in result:
        raise RowError(f"load client {mode}: {result['error']}")
    return result


def _number(result: dict[str, object], key: str) -> float:
    value = result[key]
    assert isinstance(value, int | float)
    return float(value)


def _server_rows(running: Running, ws: Workspace, plan: Plan, got: Collected) -> None:
    name = running.name
    timeout = ["--greeting-timeout", str(plan.greeting_timeout)]
    steps: list[tuple[str, object]] = [("login", None)]
    steps += [("e", None)] if "e" in plan.rows else []
    steps += [("d", n) for n in plan.clients] if "d" in plan.rows else []
    steps += [(r, None) for r in ("a", "b", "c") if r in plan.rows]
    for step, n in steps:
        if not servers.alive(running):
            got.notes.append(f"{name} exited (code {running.proc.poll()}) before row {step}")
            return
        progress(f"{name}: row {step}{'' if n is None else f' N={n}'}")
        try:
            if step == "login":
                out = loadclient("login", running, ws, ["--samples", str(plan.login_samples)])
                got.add("login_ms", name, _number(out, "median_ms"))
            elif step == "e":
                out = loadclient("idle", running, ws, ["--sessions", str(plan.idle), *timeout])
                got.add("e_pss", name, _number(out, "pss_kib_per_session"))
                got.add("e_rss", name, _number(out, "rss_kib_per_session"))
                if out["failures"]:
                    got.notes.append(f"{name}: e) {out['failures']} idle sessions failed "
                                     f"{out['failed_steps']}")  # fmt: skip
            elif step == "d":
                out = loadclient("burst", running, ws, ["--clients", str(n), *timeout])
                for suffix, key in (("rate", "sessions_per_s"), ("fail", "failures"),
                                    ("wall", "wall_s"), ("cpu", "server_cpu_s"),
                                    ("client", "client_cpu_s")):  # fmt: skip
                    got.add(f"d{n}_{suffix}", name, _number(out, key))
                if out["failures"]:
                    got.notes.append(f"{name}: d) N={n} failed steps {out['failed_steps']}")
            else:
                for _ in range(plan.transfers):
                    _curl_rows(step, running, ws, got)
        except (RowError, transfers.TransferError, OSError, KeyError, AssertionError) as exc:
            got.notes.append(f"{name}: row {step}{'' if n is None else f' N={n}'}: {exc}")


def _curl_rows(step: str, running: Running, ws: Workspace, got: Collected) -> None:
    url = f"ftp://{running.user}:{ws.password}@{HOST}:{running.port}"
    upload = ws.root / f"upload-{running.name}.bin"
    plans = {"a": [("retr_plain", False, False)], "b": [("stor_plain", True, False)],
             "c": [("retr_tls", False, True), ("stor_tls", True, True)]}  # fmt: skip
    for key, is_upload, tls in plans[step]:
        try:
            done = transfers.curl_transfer(
                f"{url}/{upload.name if is_upload else BIG_NAME}", ws.big, ws.big_size,
                upload=is_upload, tls=tls, upload_check=upload if is_upload else None,
                server_pid=running.proc.pid,
            )  # fmt: skip
        finally:
            upload.unlink(missing_ok=True)
        got.add(key, running.name, done.mb_per_s)
        got.add(f"{key}_server_cpu", running.name, done.server_cpu_per_gib)
        got.add(f"{key}_client_cpu", running.name, done.client_cpu_per_gib)
        if tls:
            got.tls[running.name] = done.tls


def measure(plan: Plan, got: Collected) -> None:
    """Run every row of the plan on every usable server, `plan.runs` times."""
    needs_user = any(s in ("vsftpd", "pure-ftpd") for s in plan.servers)
    with workspace(plan.size, plan.pasv_min, plan.pasv_max, system_user=needs_user) as ws:
        usable = []
        for name in plan.servers:
            reason = servers.unavailable(name, ws)
            if reason:
                got.notes.append(f"{name} skipped: {reason}")
            else:
                usable.append(name)
                got.versions[name] = servers.version(name)
        for run in range(plan.runs):
            progress(f"run {run + 1} of {plan.runs}")
            if "f" in plan.rows:
                got.add("f_sendfile", "loopback", transfers.loopback_sendfile(ws.big, ws.big_size))
                got.add("f_send", "loopback", transfers.loopback_sendrecv(ws.big_size))
            for name in usable:
                try:
                    running = servers.start(name, ws)
                except servers.StartError as exc:
                    got.notes.append(f"{name} did not start in run {run + 1}: {exc}")
                    continue
                try:
                    got.checks[name] = running.password_check
                    _server_rows(running, ws, plan, got)
                finally:
                    servers.stop(running)


def render(plan: Plan, got: Collected, started: datetime.datetime) -> str:
    """The whole report as Markdown."""
    full = parse([])
    if plan.quick:
        kind = "SMOKE RUN (--quick): small sizes, not comparable figures"
    elif (plan.runs, plan.transfers, plan.size, plan.clients, plan.idle) == (
        full.runs,
        full.transfers,
        full.size,
        full.clients,
        full.idle,
    ):
        kind = "full run"
    else:
        kind = "custom run (not the full sizes)"
    shown = [s for s in plan.servers if s in got.versions]
    parts = [
        f"# ftpsup benchmark: {kind}",
        "",
        f"Started {started:%Y-%m-%d %H:%M} UTC; {plan.runs} run(s) per row, each server "
        f"started fresh per run, {plan.transfers} transfer(s) per run in rows a-c; file "
        f"{plan.size / 2**20:.0f} MiB; clients N = {', '.join(map(str, plan.clients))}; "
        f"{plan.idle} idle sessions; passive range {plan.pasv_min}-{plan.pasv_max} for every "
        "server; 1 MB = 10^6 bytes; cells are median (min-max).",
        "",
        report.results_table(build_rows(plan), shown, got.results),
    ]
    if "f_sendfile" in got.results:
        streams = {
            "sendfile() from the cached file": got.results["f_sendfile"]["loopback"],
            "send()/recv_into() of a 1 MiB buffer": got.results["f_send"]["loopback"],
        }
        parts += ["", "Loopback limit, row f) (one TCP stream on 127.0.0.1, no FTP):", ""]
        parts.append(
            report.key_value_table(
                ("stream", "MB/s"), {k: report.cell(v) for k, v in streams.items()}
            )
        )
    servers_info = {
        report.PEER_LABELS[s]: f"{got.versions[s]}; password check: {got.checks.get(s, '?')}"
        + (f"; FTPS: {got.tls[s]}" if s in got.tls else "")
        for s in shown
    }
    parts += ["", report.key_value_table(("server", "version, login, TLS"), servers_info)]
    parts += ["", report.key_value_table(("machine", "value"), report.machine())]
    if got.notes:
        parts += ["", "Notes:", "", *(f"- {note}" for note in got.notes)]
    return "\n".join(parts) + "\n"


def parse(argv: list[str] | None) -> Plan:
    """Turn the command line into a Plan; --quick picks the smoke sizes."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, 1 run")
    parser.add_argument("--runs", type=int, help="runs per row (default 3; --quick 1)")
    parser.add_argument(
        "--transfers", type=int, help="transfers per row a-c per server start (3; --quick 1)"
    )
    parser.add_argument("--rows", default=",".join(ALL_ROWS), help="subset of a,b,c,d,e,f")
    parser.add_argument("--only", default=",".join(servers.SERVERS), help="servers to run")
    parser.add_argument("--size-mib", type=int, help="file size (default 1024; --quick 64)")
    parser.add_argument("--clients", help="burst sizes (default 100,500,1000; --quick 20,50)")
    parser.add_argument("--idle", type=int, help="idle sessions (default 500; --quick 50)")
    parser.add_argument("--greeting-timeout", type=float, default=20.0, help="seconds (20)")
    parser.add_argument("--pasv-min", type=int, default=24000)
    parser.add_argument("--pasv-ports", type=int, default=4000, help="passive range size")
    parser.add_argument("--output", type=Path, help="Markdown file to write")
    args = parser.parse_args(argv)
    rows = frozenset(r.strip() for r in args.rows.split(",") if r.strip())
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    if not rows <= set(ALL_ROWS) or not set(only) <= set(servers.SERVERS) or not only:
        parser.error(f"--rows takes {','.join(ALL_ROWS)}; --only takes {','.join(servers.SERVERS)}")
    quick = bool(args.quick)
    clients = args.clients or ("20,50" if quick else "100,500,1000")
    name = "quick.md" if quick else "latest.md"
    return Plan(
        quick=quick,
        runs=max(1, args.runs or (1 if quick else 3)),
        transfers=max(1, args.transfers or (1 if quick else 3)),
        rows=rows,
        servers=tuple(s for s in servers.SERVERS if s in only),
        size=(args.size_mib or (64 if quick else 1024)) * 2**20,
        clients=tuple(int(n) for n in clients.split(",")),
        idle=args.idle or (50 if quick else 500),
        login_samples=5 if quick else 10,
        greeting_timeout=args.greeting_timeout,
        pasv_min=args.pasv_min,
        pasv_max=args.pasv_min + args.pasv_ports - 1,
        output=args.output or RESULTS_DIR / name,
    )


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and write it; exit 2 when the workspace cannot be made."""
    plan = parse(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Servers inherit this limit: each session holds a control and a data descriptor.
    raise_fd_limit(4 * max((*plan.clients, plan.idle)) + 1024)
    started = datetime.datetime.now(datetime.UTC)
    got = Collected()
    try:
        measure(plan, got)
    except SetupError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, scratch space removed", file=sys.stderr)
        return 130
    text = render(plan, got, started)
    print(text)
    plan.output.parent.mkdir(parents=True, exist_ok=True)
    plan.output.write_text(text)
    raw = {
        "plan": {**attrs.asdict(plan), "rows": sorted(plan.rows), "output": str(plan.output)},
        "results": got.results, "notes": got.notes, "tls": got.tls, "checks": got.checks,
        "versions": got.versions,
    }  # fmt: skip
    plan.output.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
    progress(f"wrote {plan.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
