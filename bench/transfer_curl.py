"""RETR and STOR throughput of one large file with curl over loopback: ftpsup beside pyftpdlib.

Usage: python bench/transfer_curl.py [--size-mib 1024] [--runs 3]

Both servers serve the same directory on 127.0.0.1 with logging of transfers off where the
server allows it. curl downloads to /dev/null and uploads from the file. Prints a Markdown
table with the median, min and max MB/s (1 MB = 10^6 bytes) and ftpsup/peer ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
USER, PASSWORD = "bench", "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.recv(100)
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def start_ftpsup(base: Path, root: Path) -> tuple[subprocess.Popen[bytes], int]:
    etc = base / "ftpsup-etc"
    etc.mkdir()
    port = free_port()
    (etc / "_shared.toml").write_text(
        f'user_db_file = "users.toml"\nstate_dir = "{base}/run"\nlog_dir = "{base}/log"\n'
        "pasv_min_port = 31000\npasv_max_port = 31099\n"
    )
    (etc / "bench.toml").write_text(
        f'listen_address = "{HOST}"\nlisten_port = {port}\nwrite_enable = true\n'
        'local_umask = "022"\n'
    )
    subprocess.run(
        [sys.executable, "-m", "ftpsup", "--config-dir", str(etc), "user", "add", USER,
         "--home", str(root), "--password-stdin"],
        input=f"{PASSWORD}\n".encode(), check=True,
    )
    proc = subprocess.Popen([sys.executable, "-m", "ftpsup", "serve", str(etc / "bench.toml")])
    wait_listening(port)
    return proc, port


def start_pyftpdlib(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyftpdlib", "-i", HOST, "-p", str(port), "-w", "-d", str(root),
         "-u", USER, "-P", PASSWORD, "-r", "31100-31199"],
        stderr=subprocess.DEVNULL,
    )
    wait_listening(port)
    return proc, port


def curl(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "--max-time", "600", *args], check=True)
    return time.perf_counter() - started


def measure(port: int, source: Path, size: int, runs: int) -> dict[str, list[float]]:
    url = f"ftp://{USER}:{PASSWORD}@{HOST}:{port}"
    result: dict[str, list[float]] = {"RETR": [], "STOR": []}
    for _ in range(runs):
        seconds = curl(["-o", "/dev/null", f"{url}/{source.name}"])
        result["RETR"].append(size / seconds / 1e6)
        # Every upload creates a new file, so no server gains from overwriting blocks that
        # the file system has already allocated.
        (source.parent / "upload.bin").unlink(missing_ok=True)
        seconds = curl(["-T", str(source), f"{url}/upload.bin"])
        result["STOR"].append(size / seconds / 1e6)
    (source.parent / "upload.bin").unlink(missing_ok=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    base = Path(tempfile.mkdtemp(prefix="ftpsup-bench-"))
    root = base / "root"
    root.mkdir()
    source = root / "big.bin"
    with source.open("wb") as f:
        block = os.urandom(1024 * 1024)
        for _ in range(args.size_mib):
            f.write(block)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for name, start in (("ftpsup", lambda: start_ftpsup(base, root)),
                            ("pyftpdlib", lambda: start_pyftpdlib(root))):
            proc, port = start()
            try:
                results[name] = measure(port, source, size, args.runs)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n{args.size_mib} MiB file, curl over loopback, {args.runs} runs, MB/s (10^6 B/s)\n")
    print("| row | ftpsup median (min-max) | pyftpdlib median (min-max) | ftpsup/pyftpdlib |")
    print("|---|---|---|---|")
    for row in ("RETR", "STOR"):
        ours, peer = results["ftpsup"][row], results["pyftpdlib"][row]
        print(
            f"| {row} plain | {statistics.median(ours):.0f} ({min(ours):.0f}-{max(ours):.0f}) "
            f"| {statistics.median(peer):.0f} ({min(peer):.0f}-{max(peer):.0f}) "
            f"| {statistics.median(ours) / statistics.median(peer):.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
