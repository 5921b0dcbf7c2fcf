"""The session fuzzer's driver: start instances, fuzz them, then judge what is left.

Run by tests/integration/test_fuzz.py for a bounded time, and by hand for a long run before a
release:

    python -m tests.integration.fuzz_driver --seconds 600 --seed 1 --workers 4

Theory of operation: three real instances are started (as the integration tests start them): one
on 127.0.0.1 where FTPS is offered but not forced (and anonymous users may upload), one on ::1
where logins and data must be encrypted, and one with implicit FTPS on 127.0.0.1, all with short
timeouts so broken data connections and handshakes end quickly. The homes get files with awkward
names (line ends, invalid UTF-8, a leading dash). The sessions of fuzz_sessions.Fuzzer then run
until the time or session budget is spent.

The verdict never depends on timing. After the run it checks, per instance:
- the process is still running;
- a fresh client gets the 220 greeting, logs in, lists the home (and sees a file that no
  session may touch), and quits;
- the process then stops cleanly on SIGTERM (exit status 0);
- its log files hold no Python traceback, nor does its standard error (the pytest test reads
  it with capfd, the command line from a file);
- no file the fuzzer named (fuzz_inputs.NAME_PREFIX) exists outside the user's home;
- every reply line was well formed, every listing line whole (no bare CR or LF in it), and
  every session got its greeting.
Stalls (no answer within an action's deadline) are reported beside the verdict, for a person
to look at; they do not fail it, as they depend on timing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from tests.integration.ftps import CertPair, tls_settings, write_cert_pair
from tests.integration.fuzz_checks import (
    SENTINEL,
    check_serving,
    distinct_tracebacks,
    stderr_problems,
    stray_files,
    traceback_excerpts,
)
from tests.integration.fuzz_inputs import LINK_NAMES, NAME_PREFIX, OUT_LINK, home_names
from tests.integration.fuzz_sessions import Fuzzer
from tests.integration.fuzz_stats import Stats
from tests.integration.fuzz_wire import Target
from tests.integration.servers import Server, start_server

DEFAULT_SEED = 959
SEED_ENV = "FTPSUP_FUZZ_SEED"

StartServer = Callable[..., Server]
# (address, FTPS forced for logins and data, implicit FTPS) of each instance fuzzed.
# The first also lets anonymous users in, to a root of their own where they may write.
INSTANCES = [("127.0.0.1", False, False), ("::1", True, False), ("127.0.0.1", True, True)]


ANONYMOUS = {
    "anonymous_enable": True,
    "anon_upload_enable": True,
    "anon_mkdir_write_enable": True,
    "anon_other_write_enable": True,
}


def seed_from_env() -> int:
    """The seed in FTPSUP_FUZZ_SEED: a number, "random" for a fresh one, unset for the default."""
    value = os.environ.get(SEED_ENV, "").strip()
    if not value:
        return DEFAULT_SEED
    if value == "random":
        return secrets.randbelow(1 << 31)
    return int(value)


def instance_settings(pair: CertPair, *, tls_required: bool, implicit: bool) -> dict[str, Any]:
    """Writable FTPS instances whose timeouts end broken connections within seconds."""
    return tls_settings(
        pair,
        implicit_ssl=implicit,
        force_local_logins_ssl=tls_required,
        force_local_data_ssl=tls_required,
        accept_timeout=2,
        connect_timeout=2,
        data_connection_timeout=5,
        idle_session_timeout=30,
        tls_handshake_timeout=2,
    )


def populate_home(home: Path, outside: Path) -> list[str]:
    """Files and a directory with awkward names, and symbolic links out of the home.

    Returns:
        The names, as the fuzzer may name them.
    """
    home.mkdir(parents=True, exist_ok=True)
    links = {OUT_LINK: outside, "etc-link": Path("/etc"), "up-link": Path("../.."), "loop": None}
    assert set(links) == set(LINK_NAMES)
    for name, points_to in links.items():
        (home / name).symlink_to(points_to or home / name)
    names = home_names()
    for i, name in enumerate(names):
        (home / name).write_bytes(b"line\r\n" * (i * 50))
    (home / f"{NAME_PREFIX}dir").mkdir(exist_ok=True)
    (home / f"{NAME_PREFIX}dir" / "inner.txt").write_bytes(b"inner\n")
    # Never named by the fuzzer (so never renamed away): the check after the run lists it.
    (home / SENTINEL).write_bytes(b"still here\n")
    return [*names, *links, f"{NAME_PREFIX}dir", f"{NAME_PREFIX}dir/inner.txt", "etc-link/passwd"]


@attrs.frozen
class Verdict:
    """The outcome of one run: `problems` fail it; the rest is for the report."""

    seed: int
    seconds: float
    workers: int
    stats: Stats
    problems: tuple[str, ...]
    tracebacks: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.tracebacks and not self.stats.anomalies

    def report(self, *, transcript: int = 80) -> str:
        s = self.stats
        out = [
            f"fuzz seed {self.seed}: {s.sessions} sessions, {s.logins} logins, "
            f"{s.completed} completed transfers; actions {dict(sorted(s.actions.items()))}",
            f"seconds per kind of action: {_rounded(s.seconds)}",
            f"replay: python -m tests.integration.fuzz_driver --seconds {self.seconds:g} "
            f"--seed {self.seed} --workers {self.workers}"
            f"   (or {SEED_ENV}={self.seed} for the pytest test, with one worker)",
        ]
        out += [f"PROBLEM: {p}" for p in self.problems]
        for excerpt in distinct_tracebacks(self.tracebacks):
            out += ["TRACEBACK in the instance log (with the log lines before it):", excerpt]
        out += [f"stall: {x}" for x in s.stalls[:20]]
        for anomaly, sessions in sorted(s.anomalies.items()):
            out.append(f"ANOMALY: {anomaly} (sessions {sessions[:5]}, {len(sessions)} in all)")
        if not self.ok and transcript:
            out += ["last actions:", *list(s.transcript)[-transcript:]]
        return "\n".join(out)


def run_workers(
    targets: list[Target],
    seed: int,
    *,
    known: list[str],
    step_seconds: float,
    seconds: float,
    max_sessions: int,
    workers: int,
) -> Stats:
    """`workers` fuzzers side by side in threads, so sessions overlap in the server.

    Worker 0 uses `seed` itself, so one worker replays a single fuzzer's run exactly; the
    others derive theirs from it. Each worker runs at most its share of `max_sessions`.
    """
    fuzzers = [
        Fuzzer(
            targets,
            seed + i * 1_000_003,
            known=known,
            step_seconds=step_seconds,
            label=f"w{i}." if workers > 1 else "",
        )
        for i in range(workers)
    ]
    share = max(1, max_sessions // workers)
    errors: list[BaseException] = []

    def work(fuzzer: Fuzzer) -> None:
        try:
            fuzzer.run(seconds=seconds, max_sessions=share)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f,)) for f in fuzzers[1:]]
    for thread in threads:
        thread.start()
    work(fuzzers[0])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    total = Stats(seed)
    for fuzzer in fuzzers:
        total.add(fuzzer.stats)
    return total


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) for k, v in sorted(seconds.items())}


def fuzz(
    start: StartServer,
    workdir: Path,
    *,
    seed: int,
    seconds: float,
    max_sessions: int,
    step_seconds: float = 10,
    workers: int = 1,
) -> Verdict:
    """Start the instances with `start(host, **settings)`, fuzz them, and judge them."""
    pair = write_cert_pair(workdir)
    targets: list[Target] = []
    servers: list[Server] = []
    anon_root = workdir / "anon"
    for i, (host, tls_required, implicit) in enumerate(INSTANCES):
        settings = instance_settings(pair, tls_required=tls_required, implicit=implicit)
        if i == 0:
            settings.update(ANONYMOUS, anon_root=str(anon_root))
        srv = start(host, **settings)
        servers.append(srv)
        targets.append(
            Target(host, srv.port, srv.user, srv.password, tls_required, implicit, i == 0)
        )
    known: list[str] = []
    outside = workdir / "outside"
    outside.mkdir()
    for home in [anon_root, *(srv.home for srv in servers)]:
        known = populate_home(home, outside)
    pairs = list(zip(servers, targets, strict=True))
    problems = [p for srv, target in pairs for p in check_serving(srv, target)]
    if problems:
        return Verdict(
            seed, seconds, workers, Stats(seed), tuple(f"before: {p}" for p in problems), ()
        )
    stats = run_workers(
        targets,
        seed,
        known=known,
        step_seconds=step_seconds,
        seconds=seconds,
        max_sessions=max_sessions,
        workers=workers,
    )
    tracebacks: list[str] = []
    for srv, target in pairs:
        if srv.process.poll() is not None:
            problems.append(f"{srv.host}: the instance exited (status {srv.process.returncode})")
            continue
        problems += check_serving(srv, target)
        srv.stop()
        if srv.process.returncode != 0:
            problems.append(f"{srv.host}: no clean stop (status {srv.process.returncode})")
    for srv in servers:
        tracebacks += traceback_excerpts(srv.log_text())
    homes = [anon_root, *(srv.home for srv in servers)]
    problems += [f"file outside the home: {p}" for p in stray_files(workdir, homes)]
    return Verdict(seed, seconds, workers, stats, tuple(problems), tuple(tracebacks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.integration.fuzz_driver",
        description="Fuzz two fresh ftpsup instances on loopback; exit 1 on any problem.",
    )
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh random seed")
    parser.add_argument("--sessions", type=int, default=1_000_000, help="at most this many")
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument(
        "--workers", type=int, default=1, help="fuzzers side by side (1 replays exactly)"
    )
    args = parser.parse_args(argv)
    seed = secrets.randbelow(1 << 31) if args.seed is None else args.seed
    print(f"fuzzing for {args.seconds:g} s with seed {seed}, {args.workers} worker(s)", flush=True)
    started: list[Server] = []

    def start(host: str, **settings: Any) -> Server:
        srv = start_server(base / f"s{len(started)}", host, **settings)
        started.append(srv)
        return srv

    # The instances inherit standard error: send it to a file, to look for tracebacks in it.
    saved_stderr = os.dup(2)
    with (
        tempfile.TemporaryDirectory(prefix="ftpsup-fuzz-") as tmp,
        tempfile.TemporaryFile() as stderr_file,
    ):
        base = Path(tmp)
        os.dup2(stderr_file.fileno(), 2)
        try:
            verdict = fuzz(
                start,
                base,
                seed=seed,
                seconds=args.seconds,
                max_sessions=args.sessions,
                step_seconds=args.step_seconds,
                workers=args.workers,
            )
        finally:
            for srv in started:
                srv.stop()
            os.dup2(saved_stderr, 2)
        stderr_file.seek(0)
        stderr = stderr_file.read().decode("utf-8", "replace")
    bad_stderr = stderr_problems(stderr)
    print(verdict.report())
    for problem in bad_stderr:
        print(f"PROBLEM on the instances' standard error:\n{problem}")
    ok = verdict.ok and not bad_stderr
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
