"""One fuzzed data transfer: a mode, a verb, and a way of treating the data connection.

Theory of operation: the transfer is set up as a client would (TYPE and REST at times, then
PASV, EPSV, PORT or EPRT, then the verb), and the data connection is then used well or badly:
read or written to the end, closed early, reset, never opened, fed garbage, left for ABOR
(plain, or with Telnet IP and an urgent IAC DM), interrupted by STAT, held open while later
sessions run, first connected to from another loopback address (127.0.0.2), or opened in plain
text where PROT P asks for TLS (and TLS without resuming the control connection's session).
Every other data socket is closed before the closing marker is sent (see
fuzz_wire.Control.sync), so the transfer ends and the marker's reply comes.

Rules:
- Active-mode targets are loopback only: the fuzzer's own listener, or a reserved port that
  the server must refuse (FTP bounce, RFC 2577).
- Every socket call has a timeout taken from the action's deadline.
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
from collections.abc import Callable

from tests.integration import fuzz_inputs as inputs
from tests.integration.fuzz_wire import (
    MAX_DATA,
    Reply,
    Session,
    broken_listing_lines,
    hard_close,
    passive_port,
    read_some,
    remaining,
    send_some,
)

UPLOADS = ("STOR", "APPE", "STOU")
LISTINGS = ("LIST", "NLST", "MLSD")
BEHAVIOURS = (
    "full", "full", "full", "early", "reset", "no_connect", "garbage", "abor", "stat", "plain",
    "no_session", "thief", "hold",
)  # fmt: skip


def transfer(
    s: Session,
    rng: random.Random,
    tls: ssl.SSLContext,
    deadline: float,
    note: Callable[[str], None],
    known: list[str],
) -> tuple[list[Reply], socket.socket | None]:
    """Run one transfer as described above.

    Returns:
        Every reply it got, in order; and for "hold", the data connection, left open with the
        transfer running (no marker is sent then: its reply would wait for the transfer).
    """
    mode = rng.choice(["PASV", "EPSV", "PORT", "EPRT"])
    if s.target.v6 and mode in ("PASV", "PORT") and rng.random() < 0.8:
        mode = {"PASV": "EPSV", "PORT": "EPRT"}[mode]
    how = rng.choice(BEHAVIOURS)
    verb, arg = _verb(rng, known)
    line = verb.encode() + (b" " + arg if arg is not None else b"")
    note(f"transfer {mode} {how} {line[:160]!r}")
    replies: list[Reply] = []
    preface = []
    if rng.random() < 0.3:
        preface.append(b"TYPE " + rng.choice([b"A", b"I", b"I", inputs.hostile(rng)]))
    if rng.random() < 0.15:
        preface.append(b"REST " + rng.choice([b"0", b"100", inputs.number(rng)]))
    if preface:
        s.ctl.send(b"".join(p + b"\r\n" for p in preface), deadline)
        replies += s.ctl.sync(deadline, end_line=True)
    data: socket.socket | None = None
    listener: socket.socket | None = None
    try:
        if mode in ("PASV", "EPSV"):
            answer = s.ctl.command(mode.encode(), deadline)
            replies.append(answer)
            port = passive_port(answer)
            if port is None:
                return replies + s.ctl.sync(deadline), None
            if how == "thief" and not s.target.v6:
                # Another loopback address first: the server must refuse it (it is not the
                # control connection's peer) and still take the real client after it.
                thief = _connect(s.target.host, port, deadline, source="127.0.0.2")
                if thief is not None:
                    send_some(thief, b"stolen?", deadline)
                    thief.close()
            if how != "no_connect":
                data = _connect(s.target.host, port, deadline)
        else:
            listener = _listen(s.target.host)
            own = listener.getsockname()[1]
            answer = s.ctl.command(_active_line(mode, s.target.host, own), deadline)
            replies.append(answer)
            if answer.code != 200:
                return replies + s.ctl.sync(deadline), None
        s.ctl.send(line + b"\r\n", deadline)
        first = s.ctl.reply(deadline)
        replies.append(first)
        if 100 <= first.code < 200:
            if listener is not None and how != "no_connect":
                data = _accept(listener, deadline)
            if data is not None:
                data = _use(data, s, rng, tls, how, verb=verb, deadline=deadline)
            if how == "hold" and data is not None:
                held, data = data, None
                return replies, held
            if how == "abor":
                if rng.random() < 0.5:
                    s.ctl.send_urgent_abort(deadline)
                else:
                    s.ctl.send(b"ABOR\r\n", deadline)
    finally:
        for sock in (data, listener):
            if sock is not None:
                sock.close()
    return replies + s.ctl.sync(deadline), None


def _verb(rng: random.Random, known: list[str]) -> tuple[str, bytes | None]:
    verb = rng.choice(["RETR", "RETR", "STOR", "APPE", "STOU", "LIST", "NLST", "MLSD"])
    if verb == "RETR":
        return verb, inputs.read_path(rng, known)
    if verb in ("STOR", "APPE"):
        return verb, inputs.write_path(rng)
    if verb == "STOU":
        return verb, None if rng.random() < 0.5 else inputs.write_path(rng)
    roll = rng.random()
    if roll < 0.3:
        return verb, None
    if roll < 0.5:
        return verb, rng.choice([b"-la", b"-a", b"-R", b".", b"/", b"fzdir", b"*"])
    return verb, inputs.read_path(rng, known)


def _active_line(mode: str, host: str, port: int) -> bytes:
    if mode == "PORT":
        return f"PORT {host.replace('.', ',')},{port >> 8},{port & 0xFF}".encode()
    return f"EPRT |{2 if ':' in host else 1}|{host}|{port}|".encode()


def _listen(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(1)
    return sock


def _connect(
    host: str, port: int, deadline: float, *, source: str | None = None
) -> socket.socket | None:
    try:
        return socket.create_connection(
            (host, port),
            timeout=remaining(deadline),
            source_address=(source, 0) if source else None,
        )
    except OSError:
        return None


def _accept(listener: socket.socket, deadline: float) -> socket.socket | None:
    try:
        listener.settimeout(remaining(deadline))
        conn, _ = listener.accept()
    except OSError:
        return None
    return conn


def _use(
    data: socket.socket,
    s: Session,
    rng: random.Random,
    tls: ssl.SSLContext,
    how: str,
    *,
    verb: str,
    deadline: float,
) -> socket.socket | None:
    """Treat the open data connection as `how` says; returns the socket left to close."""
    upload = verb in UPLOADS
    if how == "reset":
        hard_close(data)
        return None
    if how == "garbage" or (how == "plain" and s.prot_p):
        send_some(data, rng.randbytes(rng.randrange(1, 70000)), deadline)
        return data
    if s.prot_p:
        session = None if how == "no_session" else s.ctl.session()
        try:
            data.settimeout(remaining(deadline))
            data = tls.wrap_socket(data, server_hostname="localhost", session=session)
        except (OSError, ssl.SSLError, ValueError):
            return data
    if how == "early":
        if upload:
            send_some(data, rng.randbytes(rng.randrange(1, 5000)), deadline)
        else:
            read_some(data, rng.randrange(1, 5000), deadline)
        return data
    if how == "stat":
        s.ctl.send(b"STAT\r\n", deadline)
    if how in ("abor", "hold"):
        if upload:
            send_some(data, rng.randbytes(rng.randrange(1, 5000)), deadline)
        return data
    if upload:
        send_some(data, inputs.upload_payload(rng), deadline)
        if isinstance(data, ssl.SSLSocket):
            with contextlib.suppress(OSError, ssl.SSLError, ValueError):
                data = data.unwrap()
    else:
        received = read_some(data, MAX_DATA, deadline)
        if verb in LISTINGS:
            s.ctl.anomalies += [f"{verb} line {b!r}" for b in broken_listing_lines(received)]
    return data
