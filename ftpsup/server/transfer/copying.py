"""Copy loops for data connections: file or bytes to socket, socket to file.

Rules:
- Every function here blocks and runs whole in a worker thread, so neither disk I/O nor a
  slow client ever stalls the event loop, and a second core can move bytes. The exceptions
  never wait: `send_bytes_now` gives a non-blocking socket what its send buffer takes at
  once (a small listing needs no thread), and `send_cached_now` does the same for a small
  file that preadv2(RWF_NOWAIT) finds whole in the page cache.
- The data socket is switched to blocking mode with SO_RCVTIMEO/SO_SNDTIMEO set to the
  data-connection timeout: one syscall per chunk (no poll round trips), and a stalled peer
  ends in TimeoutError instead of a stuck thread. Plain sendfile() is the exception: it runs
  on the non-blocking socket and waits in poll() with the same timeout.
- ABOR and disconnects stop a copy by shutting the socket down from the event loop's side:
  a blocked send fails or recv returns 0, and the caller reads the abort flag.
- File-side failures are raised as LocalIoError so the caller can tell "disk full" (452) from
  "the client went away" (426).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket
import ssl
import struct
from collections.abc import Callable

import attrs

from ftpsup.proto.ascii import FromNetwork, ToNetwork
from ftpsup.server.tls_data import TlsDataConnection

# A data connection: plain, or TLS over a plain socket.
DataSocket = socket.socket | TlsDataConnection

# sendfile() count per call on a non-blocking socket. Measured on loopback against a
# blocking socket with 8 MiB counts (docs/performance.md): the sending thread spent less
# kernel time per GiB when it returned to poll() between calls instead of sleeping inside
# one long sendfile.
SENDFILE_CHUNK = 1024 * 1024
RECV_BUFFER = 1024 * 1024
READ_CHUNK = 256 * 1024
# Pipe between socket and file for splice(); 1 MiB measured best of 64 KiB to 4 MiB.
SPLICE_PIPE_SIZE = 1024 * 1024
# splice() into a file that cannot take it: O_APPEND (EINVAL), some FUSE and network mounts.
_SPLICE_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})
# Largest download tried on the event loop from the page cache (send_cached_now).
SEND_NOW_LIMIT = 256 * 1024


class LocalIoError(Exception):
    """Reading or writing the local file failed; `error` is the OSError from the OS."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


@attrs.define
class Progress:
    """Bytes moved so far; written by the copying thread, read by STAT on the event loop."""

    bytes_done: int = 0


def prepare_socket(data: DataSocket, timeout: float) -> None:
    """Make the socket blocking, with kernel send/receive timeouts of `timeout` seconds."""
    sock = data.sock if isinstance(data, TlsDataConnection) else data
    sock.setblocking(True)
    seconds = int(timeout)
    micros = int((timeout - seconds) * 1_000_000)
    timeval = struct.pack("@ll", seconds, micros)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def _send_all(sock: DataSocket, data: bytes | memoryview, progress: Progress) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError) as exc:
            raise TimeoutError("data connection timed out") from exc
        view = view[sent:]
        progress.bytes_done += sent


def send_bytes(sock: DataSocket, data: bytes, progress: Progress, timeout: float) -> None:
    """Send a listing or other in-memory payload, from `progress.bytes_done` on."""
    prepare_socket(sock, timeout)
    _send_all(sock, memoryview(data)[progress.bytes_done :], progress)


def send_bytes_now(sock: socket.socket, data: bytes | bytearray, progress: Progress) -> bool:
    """Send what the non-blocking `sock` takes without waiting; never blocks.

    Returns:
        True when all of `data` has gone out; False when the socket's send buffer filled
        first, in which case `send_bytes` finishes the job from `progress.bytes_done`.

    Raises:
        OSError: the connection failed (reset by the peer, for example).
    """
    view = memoryview(data)[progress.bytes_done :]
    while view:
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            return False
        view = view[sent:]
        progress.bytes_done += sent
    return True


def _poll_milliseconds(timeout: float) -> int:
    # poll() takes a C int of milliseconds; a timeout of weeks is as good as "never".
    return min(int(timeout * 1000), 2**31 - 1)


def send_cached_now(
    sock: socket.socket, fd: int, offset: int, count: int, progress: Progress
) -> bool:
    """Send a small file straight from the page cache without waiting; never blocks.

    preadv2(RWF_NOWAIT) reads only what is cached (a file that would need the disk is left
    to `send_file` in a worker thread), and the non-blocking socket takes what fits.

    Returns:
        True when all `count` bytes from `offset` went out; False when the caller must go on
        with `send_file` from `offset + progress.bytes_done`.
    """
    if count > SEND_NOW_LIMIT:
        return False
    buffer = bytearray(count)
    try:
        got = os.preadv(fd, [buffer], offset, os.RWF_NOWAIT)
    except OSError:
        # EAGAIN (not cached) or EOPNOTSUPP (a file system without RWF_NOWAIT).
        return False
    if got != count:
        return False
    return send_bytes_now(sock, buffer, progress)


def send_file(sock: DataSocket, fd: int, offset: int, progress: Progress, timeout: float) -> None:
    """Send a file from `offset` to its end with sendfile(2): the bytes never enter Python."""
    prepare_socket(sock, timeout)
    if isinstance(sock, TlsDataConnection):
        # sendfile() would bypass the encryption: TLS data goes through SSL_write.
        _send_file_by_read(sock, fd, offset, progress, None)
        return
    out = sock.fileno()
    sock.setblocking(False)
    writable = select.poll()
    writable.register(out, select.POLLOUT)
    while True:
        try:
            sent = os.sendfile(out, fd, offset, SENDFILE_CHUNK)
        except BlockingIOError as exc:
            # POLLHUP/POLLERR (an ABOR shut the socket down) also end the wait; the next
            # sendfile then raises the connection's error.
            if not writable.poll(_poll_milliseconds(timeout)):
                raise TimeoutError("data connection timed out") from exc
            continue
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS) and progress.bytes_done == 0:
                # A file system without sendfile support (some FUSE mounts): copy by hand.
                sock.setblocking(True)
                _send_file_by_read(sock, fd, offset, progress, None)
                return
            raise
        if sent == 0:
            return
        offset += sent
        progress.bytes_done += sent


def _read_into(fd: int, buffer: bytearray) -> int:
    try:
        return os.readv(fd, [buffer])
    except OSError as exc:
        raise LocalIoError(exc) from exc


def _send_file_by_read(
    sock: DataSocket,
    fd: int,
    offset: int,
    progress: Progress,
    convert: Callable[[bytes], bytes] | None,
) -> None:
    try:
        os.lseek(fd, offset, os.SEEK_SET)
    except OSError as exc:
        raise LocalIoError(exc) from exc
    # One buffer for the whole file: a fresh 256 KiB object per chunk would cost an mmap and
    # munmap each (large blocks bypass the heap; see server/instance.py).
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    while count := _read_into(fd, buffer):
        chunk = view[:count]
        _send_all(sock, convert(bytes(chunk)) if convert else chunk, progress)


def send_file_ascii(
    sock: DataSocket, fd: int, offset: int, progress: Progress, timeout: float
) -> None:
    """Send a file in TYPE A: local LF line ends go out as CRLF (RFC 959 §3.1.1.1)."""
    prepare_socket(sock, timeout)
    _send_file_by_read(sock, fd, offset, progress, ToNetwork().convert)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError as exc:
            raise LocalIoError(exc) from exc
        view = view[written:]


def _splice_into_file(sock: socket.socket, fd: int, progress: Progress) -> None:
    """Move an upload socket -> pipe -> file inside the kernel, without copying it through
    Python: one copy instead of two, a quarter less CPU per GiB on loopback.

    Stops at the end of file, at TCP urgent data, and when the file refuses splice
    (O_APPEND, or a file system without it) before any byte was spliced into it. Everything
    taken from the socket has been written by then; the caller goes on reading the socket
    itself, which at the end of the upload just confirms the end of file.
    """
    pipe_read, pipe_write = os.pipe2(os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe_write, fcntl.F_SETPIPE_SZ, SPLICE_PIPE_SIZE)
        source = sock.fileno()
        written = 0
        while True:
            try:
                count = os.splice(source, pipe_write, SPLICE_PIPE_SIZE, flags=os.SPLICE_F_MOVE)
            except BlockingIOError as exc:
                raise TimeoutError("data connection timed out") from exc
            if count == 0:
                # End of file, or TCP urgent data (splice stops at the mark): the buffered
                # loop tells the two apart and goes on reading if it was the mark.
                return
            progress.bytes_done += count
            while count:
                try:
                    moved = os.splice(pipe_read, fd, count, flags=os.SPLICE_F_MOVE)
                except OSError as exc:
                    if exc.errno not in _SPLICE_UNSUPPORTED or written:
                        raise LocalIoError(exc) from exc
                    _drain_pipe(pipe_read, fd, count)
                    return
                count -= moved
                written += moved
    finally:
        os.close(pipe_read)
        os.close(pipe_write)


def _drain_pipe(pipe_read: int, fd: int, count: int) -> None:
    while count:
        data = os.read(pipe_read, count)
        _write_all(fd, data)
        count -= len(data)


def receive_file(
    sock: DataSocket,
    fd: int,
    progress: Progress,
    timeout: float,
    *,
    ascii: bool,
    ragged_eof_ok: bool = True,
) -> None:
    """Receive until the client closes the data connection, writing every byte to `fd`.

    Bytes are written as they arrive, so an upload cut short keeps what was received and a
    later REST + STOR or APPE can resume it. A plain binary upload is spliced (no copy
    through Python); TLS and TYPE A data pass through a buffer.
    """
    prepare_socket(sock, timeout)
    if not ascii and isinstance(sock, socket.socket):
        _splice_into_file(sock, fd, progress)
    buffer = bytearray(RECV_BUFFER)
    view = memoryview(buffer)
    decoder = FromNetwork() if ascii else None
    while True:
        try:
            count = sock.recv_into(buffer)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError) as exc:
            raise TimeoutError("data connection timed out") from exc
        except ssl.SSLEOFError:
            # The TCP connection ended without TLS close_notify: the client may have sent
            # more than arrived (a truncation attack, or an RST that dropped the tail).
            if not ragged_eof_ok:
                raise
            break
        if count == 0:
            break
        progress.bytes_done += count
        if decoder is not None:
            _write_all(fd, decoder.convert(bytes(view[:count])))
        else:
            _write_all(fd, view[:count])
    if decoder is not None:
        _write_all(fd, decoder.flush())


def close_tls(sock: TlsDataConnection, *, strict: bool) -> None:
    """Exchange close_notify on a finished TLS data connection.

    With `strict` (strict_ssl_write_shutdown) a client that does not answer with its own
    close_notify fails the transfer; otherwise a plain close from the client is accepted.
    """
    try:
        sock.unwrap()
    except (ssl.SSLError, OSError, ValueError):
        if strict:
            raise
