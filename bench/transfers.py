"""Rows a) to c) and f): large-file RETR/STOR with curl, plain and FTPS, and the loopback limit.

Rules:
- 1 MB = 10^6 bytes. A transfer's time is curl's time_total minus time_pretransfer, so the
  login (whose cost differs per server and is reported on its own) and the PASV/PROT
  exchange are not counted against throughput.
- Every transfer is checked: curl's exit status, the byte count, and for STOR the size of the
  file the server wrote. A failed transfer raises TransferError; it is never a number.
- FTPS is explicit (AUTH TLS) with PROT P on the data channel (curl --ssl-reqd); the TLS
  version and cipher are read from curl -v.
- Each STOR writes a new file, deleted afterwards, and dirty pages are flushed first, so no run
  inherits another's writeback.
- The loopback limit is one TCP stream on 127.0.0.1: a forked reader process recv_into()s a
  reused 100 KiB buffer (curl's size) while the writer uses os.sendfile() from the page-cached
  file in 64 KiB calls on a non-blocking socket, or send() of a 1 MiB buffer.
"""

from __future__ import annotations

import os
import re
import resource
import select
import socket
import struct
import subprocess
import time
from pathlib import Path

import attrs

from bench import procstats
from bench.workspace import HOST

CURL_MAX_TIME = 600
STREAM_TIMEOUT = 60
_WRITE_OUT = "%{time_pretransfer} %{time_total} %{size_download} %{size_upload}"
_TLS_LINE = re.compile(r"SSL connection using (\S+) / (\S+)")
_CHUNK = 1024 * 1024
_SENDFILE_CALL = 64 * 1024
SETTLE_SECONDS = 5.0


class TransferError(Exception):
    """A transfer failed or moved the wrong number of bytes."""


@attrs.frozen
class CurlResult:
    """One curl transfer: throughput in MB/s and, for FTPS, the negotiated TLS."""

    mb_per_s: float
    seconds: float
    tls: str
    # CPU seconds per GiB moved, when measured: the server's process tree (its login
    # included) and curl's. When curl's figure is close to the transfer's seconds per GiB,
    # curl used a whole core and the client was the limit.
    server_cpu_per_gib: float = 0.0
    client_cpu_per_gib: float = 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _settle(server_pid: int, processes: int) -> None:
    """Wait (bounded) until a forked session process is gone and its CPU is reaped."""
    end = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < end and len(procstats.tree(server_pid)) > processes:
        time.sleep(0.05)


def curl_transfer(
    url: str,
    path: Path,
    size: int,
    *,
    upload: bool,
    tls: bool,
    upload_check: Path | None = None,
    server_pid: int | None = None,
) -> CurlResult:
    """Download `url` to /dev/null, or upload `path` to `url`; returns MB/s.

    Args:
        url: ftp:// URL with credentials.
        path: the source file of an upload.
        size: expected byte count.
        upload: STOR instead of RETR.
        tls: explicit FTPS with PROT P.
        upload_check: where the server writes the upload, checked for its size.
        server_pid: the server's process, for its CPU time during the transfer.
    """
    flags = ["--ssl-reqd", "-k"] if tls else []
    action = ["-T", str(path)] if upload else ["-o", "/dev/null"]
    argv = ["curl", "-sS", "-v", "--max-time", str(CURL_MAX_TIME), *flags, *action]
    argv += ["-w", _WRITE_OUT, url]
    if upload:
        os.sync()
    processes = len(procstats.tree(server_pid)) if server_pid else 0
    server_before = procstats.cpu_seconds(server_pid) if server_pid else 0.0
    client_before = _children_cpu()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CURL_MAX_TIME + 30)
    except subprocess.TimeoutExpired as exc:
        raise TransferError(f"curl did not finish in {CURL_MAX_TIME} s") from exc
    client_cpu = _children_cpu() - client_before
    server_cpu = 0.0
    if server_pid:
        _settle(server_pid, processes)
        server_cpu = procstats.cpu_seconds(server_pid) - server_before
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith(("curl:", "< "))]
        raise TransferError(f"curl exit {done.returncode}: {' | '.join(errors[-3:])}")
    pretransfer, total, down, up = done.stdout.split()[-4:]
    moved = int(up if upload else down)
    if moved != size:
        raise TransferError(f"curl moved {moved} bytes, expected {size}")
    if upload_check is not None and upload_check.stat().st_size != size:
        raise TransferError(f"server wrote {upload_check.stat().st_size} bytes, expected {size}")
    seconds = float(total) - float(pretransfer)
    found = _TLS_LINE.search(done.stderr)
    tls_text = f"{found[1]} {found[2]}" if found else ("?" if tls else "")
    gib = size / 2**30
    return CurlResult(
        mb_per_s=size / max(seconds, 1e-6) / 1e6,
        seconds=seconds,
        tls=tls_text,
        server_cpu_per_gib=server_cpu / gib,
        client_cpu_per_gib=client_cpu / gib,
    )


def _reader(sock: socket.socket, expected: int, got: list[int]) -> None:
    # curl's own receive buffer size (the curl tool's default, 100 KiB).
    buf = bytearray(100 * 1024)
    view = memoryview(buf)
    total = 0
    # Each recv returns at least one byte or ends the stream, so this loop is bounded by
    # `expected`; the socket timeout bounds each wait.
    while total < expected:
        n = sock.recv_into(view)
        if n == 0:
            break
        total += n
    got.append(total)


def _kernel_timeouts(sock: socket.socket) -> None:
    # Blocking sockets with SO_SNDTIMEO/SO_RCVTIMEO: a Python-level timeout would make the
    # descriptor non-blocking (sendfile then fails with EAGAIN) and add a poll per call.
    sock.settimeout(None)
    limit = struct.pack("ll", STREAM_TIMEOUT, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)


def _sendfile_all(writer: socket.socket, path: Path, size: int) -> None:
    # Calls of 64 KiB on a non-blocking socket, waiting in poll(): the fastest of the ways
    # tried on this VM (one blocking call for the whole file moved about 40 % less).
    writer.setblocking(False)
    writable = select.poll()
    writable.register(writer.fileno(), select.POLLOUT)
    with path.open("rb") as source:
        offset = 0
        while offset < size:
            try:
                sent = os.sendfile(writer.fileno(), source.fileno(), offset, _SENDFILE_CALL)
            except BlockingIOError:
                if not writable.poll(STREAM_TIMEOUT * 1000):
                    raise TransferError("loopback sendfile: no progress") from None
                continue
            if sent == 0:
                break
            offset += sent
    writer.setblocking(True)


def _fork_reader(reader: socket.socket, writer: socket.socket, expected: int) -> int:
    """Read the stream in a child process (no GIL shared with the writer); returns its pid.

    The child exits 0 when it read exactly `expected` bytes.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 2
        try:
            writer.close()
            got: list[int] = []
            _reader(reader, expected, got)
            status = 0 if got == [expected] else 1
        finally:
            os._exit(status)
    return pid


def _stream(send: str, path: Path, size: int) -> float:
    with socket.create_server((HOST, 0)) as listener:
        listener.settimeout(STREAM_TIMEOUT)
        writer = socket.create_connection(listener.getsockname(), timeout=STREAM_TIMEOUT)
        reader, _ = listener.accept()
    with writer:
        with reader:
            _kernel_timeouts(writer)
            _kernel_timeouts(reader)
            child = _fork_reader(reader, writer, size)
        began = time.perf_counter()
        try:
            if send == "sendfile":
                _sendfile_all(writer, path, size)
            else:
                block = memoryview(os.urandom(_CHUNK))
                left = size
                while left > 0:
                    writer.sendall(block[: min(left, _CHUNK)])
                    left -= min(left, _CHUNK)
            writer.shutdown(socket.SHUT_WR)
        finally:
            # The child's receive timeout bounds this wait.
            _, status = os.waitpid(child, 0)
        seconds = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise TransferError(f"loopback {send}: the reader did not get {size} bytes")
    return size / seconds / 1e6


def loopback_sendfile(path: Path, size: int) -> float:
    """MB/s of one TCP stream on 127.0.0.1 fed by os.sendfile() from a cached file."""
    return _stream("sendfile", path, size)


def loopback_sendrecv(size: int) -> float:
    """MB/s of one TCP stream on 127.0.0.1 fed by send() of a 1 MiB buffer."""
    return _stream("send", Path(os.devnull), size)
