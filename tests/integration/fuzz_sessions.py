"""Randomised FTP sessions against live ftpsup instances: the fuzzer's actions.

Theory of operation: `Fuzzer.run` opens one session after another, each on a target picked at
random, until its time or session budget is spent. A session reads the greeting, then takes a
random number of actions: log in, a real verb with a hostile argument, a pipelined burst, raw
bytes, a TLS upgrade (completed, cut off mid-handshake, or answered with garbage), or a data
transfer in any of the four modes, done properly or broken (closed early, reset, never
connected, aborted, garbage, plain text on a protected channel). A session then ends by QUIT,
a close, a TCP reset, or by being parked: left open while the next sessions run, so the server
always has a few half-finished sessions on its hands. fuzz_driver.run_workers runs several
fuzzers in threads, so that live sessions also overlap (renames during transfers, and so on).

Rules:
- Each action gets its own deadline (`step_seconds`); a server that does not answer in time
  is recorded as a stall and the session is dropped. Stalls are reported, not judged here:
  the checks that decide pass or fail run afterwards, on the server's state and logs.
- All randomness comes from one `random.Random(seed)`, so a seed replays the same inputs.
- Every loop is bounded by a count and by the deadline.
"""

from __future__ import annotations

import random
import socket
import ssl
import time
from collections.abc import Callable

from tests.integration import fuzz_inputs as inputs
from tests.integration.ftps import client_context
from tests.integration.fuzz_stats import Stats
from tests.integration.fuzz_transfer import transfer
from tests.integration.fuzz_wire import (
    Closed,
    Control,
    Reply,
    Session,
    Stalled,
    Target,
    client_hello,
    hard_close,
    remaining,
)

MAX_PARKED = 8
MAX_STEPS = 25


class Fuzzer:
    def __init__(
        self,
        targets: list[Target],
        seed: int,
        *,
        known: list[str],
        step_seconds: float = 10,
        label: str = "",
    ) -> None:
        self.targets = targets
        self.label = label
        self.rng = random.Random(seed)
        self.stats = Stats(seed)
        self.known = known
        self.step_seconds = step_seconds
        # TLS 1.3 mostly; TLS 1.2 has other session resumption (IDs and tickets) and records.
        self.tls_choices = [client_context()] * 3 + [client_context(maximum=ssl.TLSVersion.TLSv1_2)]
        # Sessions (and data connections) left open on purpose while later sessions run.
        self.parked: list[Control | socket.socket] = []
        # Where hostile PORT/EPRT lines point: a listener of ours, drained after each session.
        self.sinks = {v6: self._listener("::1" if v6 else "127.0.0.1") for v6 in (False, True)}

    # -- the run ----------------------------------------------------------------------------

    def run(self, *, seconds: float, max_sessions: int) -> Stats:
        """Sessions until `seconds` have passed or `max_sessions` have run."""
        end = time.monotonic() + seconds
        try:
            while self.stats.sessions < max_sessions and time.monotonic() < end:
                self.stats.sessions += 1
                self._session(self.stats.sessions, end)
                self._drain_sinks()
        finally:
            for ctl in self.parked:
                ctl.close()
            for sink in self.sinks.values():
                sink.close()
        return self.stats

    def _session(self, number: int, end: float) -> None:
        target = self.rng.choice(self.targets)
        deadline = self._deadline()
        try:
            ctl = Control.open(target.host, target.port, deadline)
        except (OSError, Stalled) as exc:
            self.stats.stalls.append(f"session {self.label}{number}: connect: {exc}")
            return
        s = Session(target, ctl, number, self.rng.choice(self.tls_choices))
        self._note(s, f"open {target.host} tls_required={target.tls_required} {target.implicit=}")
        keep = False
        try:
            if target.implicit and self._handshake(s, self._implicit_how(), deadline):
                return
            greeting = ctl.reply(deadline)
            if greeting.code != 220:
                ctl.anomalies.append(f"greeting {greeting.lines!r}")
                return
            for _ in range(self.rng.randrange(1, MAX_STEPS)):
                if time.monotonic() >= end or self._step(s):
                    return
            keep = self._finish(s)
        except _Parked:
            keep = True
        except Stalled as exc:
            self.stats.stalls.append(f"session {self.label}{number} ({target.host}): {exc}")
            self._note(s, f"STALL {exc}")
        except Closed as exc:
            self._note(s, f"closed by the server: {exc}")
        except (OSError, ssl.SSLError) as exc:
            # A socket call outside fuzz_wire's wrappers (shutdown, unwrap) met a closed peer.
            self._note(s, f"connection error: {exc!r}")
        finally:
            for anomaly in ctl.anomalies:
                self.stats.anomalies.setdefault(anomaly, []).append(f"{self.label}{number}")
            ctl.anomalies.clear()
            if not keep:
                ctl.close()

    def _step(self, s: Session) -> bool:
        """One random action; True when it ended the session."""
        actions: list[tuple[int, Callable[[Session], bool]]] = [
            (12 if not s.logged_in else 1, self.login),
            (30, self.hostile_command),
            (4, self.burst),
            (4, self.raw),
            (3, self.trickle),
            (6 if not s.ctl.is_tls else 1, self.tls_upgrade),
            (4, self.protection),
            (20 if s.logged_in else 2, self.transfer),
            (4, self.rename),
            (1, self.reinitialize),
        ]
        weights = [w for w, _ in actions]
        action = self.rng.choices([a for _, a in actions], weights)[0]
        self.stats.actions[action.__name__] += 1
        started = time.monotonic()
        try:
            return action(s)
        finally:
            self.stats.seconds[action.__name__] += time.monotonic() - started

    def _finish(self, s: Session) -> bool:
        """End the session; True when it is parked (left open)."""
        roll = self.rng.random()
        if roll < 0.4:
            self._note(s, "QUIT")
            s.ctl.send(b"QUIT\r\n", self._deadline())
            s.ctl.wait_closed(self._deadline())
        elif roll < 0.5:
            self._note(s, "reset")
            hard_close(s.ctl.sock)
        elif roll < 0.6:
            # Half-close: the server reads EOF while it may still have replies to send.
            self._note(s, "shutdown(SHUT_WR)")
            s.ctl.sock.shutdown(socket.SHUT_WR)
            s.ctl.wait_closed(self._deadline())
        elif roll < 0.65 and isinstance(s.ctl.sock, ssl.SSLSocket):
            # TLS close_notify, then plain text on the same connection.
            self._note(s, "close_notify, then plain text")
            deadline = self._deadline()
            try:
                s.ctl.sock.settimeout(remaining(deadline))
                s.ctl.sock = s.ctl.sock.unwrap()
                s.ctl.send(b"NOOP\r\n", deadline)
            except (OSError, ssl.SSLError, ValueError):
                return False
            s.ctl.wait_closed(deadline)
        elif roll < 0.8:
            self._note(s, "park")
            self._park(s.ctl)
            return True
        else:
            self._note(s, "close")
        return False

    # -- actions ----------------------------------------------------------------------------

    def login(self, s: Session) -> bool:
        if s.target.tls_required and not s.ctl.is_tls and self.rng.random() < 0.9:
            self._upgrade(s, "full")
        password = s.target.password if self.rng.random() < 0.9 else "wrong"
        lines = [f"USER {s.target.user}".encode(), f"PASS {password}".encode()]
        if s.target.anonymous and self.rng.random() < 0.3:
            lines = [b"USER anonymous", b"PASS " + self.rng.choice([b"a@b.c", b"", b"%n\xff"])]
        if s.ctl.is_tls and self.rng.random() < 0.7:
            lines += [b"PBSZ 0", b"PROT P"]
        self._send_lines(s, lines)
        return False

    def hostile_command(self, s: Session) -> bool:
        own = self.sinks[s.target.v6].getsockname()[1]
        line = inputs.command(self.rng, v6=s.target.v6, own_port=own, known=self.known)
        if line.upper().startswith(b"AUTH") or line.upper().startswith(b"QUIT"):
            # AUTH is the TLS action's, where a 234 is followed by a handshake.
            line = b"NOOP " + line
        self._send_lines(s, [line])
        return False

    def burst(self, s: Session) -> bool:
        own = self.sinks[s.target.v6].getsockname()[1]
        lines = [
            inputs.command(self.rng, v6=s.target.v6, own_port=own, known=self.known)
            for _ in range(self.rng.randrange(2, 12))
        ]
        self._send_lines(
            s, [b"NOOP " + ln if ln.upper().startswith(b"AUTH") else ln for ln in lines]
        )
        return False

    def raw(self, s: Session) -> bool:
        data = inputs.raw_bytes(self.rng)
        self._note(s, f"raw {data[:60]!r}... ({len(data)} bytes)")
        deadline = self._deadline()
        s.ctl.send(data, deadline)
        self._absorb(s, s.ctl.sync(deadline, end_line=True))
        return False

    def protection(self, s: Session) -> bool:
        level = self.rng.choice([b"P", b"P", b"C", inputs.number(self.rng)])
        size = self.rng.choice([b"0", b"0", inputs.number(self.rng)])
        self._send_lines(s, [b"PBSZ " + size, b"PROT " + level])
        return False

    def rename(self, s: Session) -> bool:
        source = inputs.write_path(self.rng)
        if self.rng.random() < 0.3 and (known := inputs.modifiable(self.known)):
            source = inputs.encode_name(self.rng.choice(known))
        self._send_lines(s, [b"RNFR " + source, b"RNTO " + inputs.write_path(self.rng)])
        return False

    def reinitialize(self, s: Session) -> bool:
        self._send_lines(s, [b"REIN"])
        return False

    def tls_upgrade(self, s: Session) -> bool:
        how = self.rng.choice(["full", "full", "partial", "garbage", "plain", "silent", "reset"])
        return self._upgrade(s, how)

    def _upgrade(self, s: Session, how: str) -> bool:
        deadline = self._deadline()
        mechanism = self.rng.choice([b"TLS", b"TLS", b"SSL", b"tls", b"TLS-C"])
        self._note(s, f"AUTH {mechanism.decode()} then {how}")
        answer = s.ctl.command(b"AUTH " + mechanism, deadline)
        self._note(s, f"< {answer.first[:120]!r}")
        if answer.code != 234:
            self._absorb(s, s.ctl.sync(deadline))
            return False
        return self._handshake(s, how, deadline)

    def _implicit_how(self) -> str:
        return self.rng.choice(["full"] * 6 + ["partial", "garbage", "plain", "silent", "reset"])

    def _handshake(self, s: Session, how: str, deadline: float) -> bool:
        """The client's side of a TLS handshake, done or broken as `how` says.

        Returns:
            True when the session is over (a broken handshake ends it).

        Raises:
            _Parked: the connection was left open, mid-handshake, in Fuzzer.parked.
        """
        self._note(s, f"handshake: {how}")
        if how == "full":
            s.ctl.start_tls(s.tls, deadline)
            return False
        hello = client_hello(s.tls)
        if how == "partial":
            s.ctl.send(hello[: self.rng.randrange(1, len(hello))], deadline)
        elif how == "garbage":
            s.ctl.send(inputs.raw_bytes(self.rng)[:8192], deadline)
        elif how == "plain":
            s.ctl.send(b"USER " + s.target.user.encode() + b"\r\n", deadline)
        elif how == "reset":
            s.ctl.send(hello, deadline)
            hard_close(s.ctl.sock)
            return True
        roll = self.rng.random()
        if how == "silent" or roll < 0.4:
            self._park(s.ctl)
            raise _Parked
        if roll < 0.8:
            # Closing at once: waiting for the server to give up on the handshake would cost
            # its whole handshake timeout, and parked sessions already cover that path.
            return True
        s.ctl.wait_closed(deadline)
        return True

    def trickle(self, s: Session) -> bool:
        own = self.sinks[s.target.v6].getsockname()[1]
        line = inputs.command(self.rng, v6=s.target.v6, own_port=own, known=self.known)
        if line.upper().startswith((b"AUTH", b"QUIT")):
            line = b"NOOP " + line
        line = line[:300] + self.rng.choice([b"\r\n", b"\n", b"\xff\xff\r\n"])
        self._note(s, f"> {line!r} in small writes")
        deadline = self._deadline()
        s.ctl.trickle(line, [self.rng.randrange(1, 4) for _ in range(len(line))], deadline)
        self._absorb(s, s.ctl.sync(deadline, end_line=True))
        return False

    def transfer(self, s: Session) -> bool:
        replies, held = transfer(
            s, self.rng, s.tls, self._deadline(), lambda text: self._note(s, text), self.known
        )
        self._absorb(s, replies)
        if held is not None:
            # The transfer stays open in the server while later sessions run.
            self._park(held)
            self._park(s.ctl)
            raise _Parked
        return False

    # -- helpers ----------------------------------------------------------------------------

    def _park(self, conn: Control | socket.socket) -> None:
        self.parked.append(conn)
        if len(self.parked) > MAX_PARKED:
            self.parked.pop(0).close()

    def _deadline(self) -> float:
        return time.monotonic() + self.step_seconds

    def _note(self, s: Session, text: str) -> None:
        self.stats.transcript.append(f"[{self.label}{s.number} {s.target.host}] {text}")

    def _send_lines(self, s: Session, lines: list[bytes]) -> list[Reply]:
        deadline = self._deadline()
        for line in lines:
            self._note(s, f"> {line[:200]!r}")
        s.ctl.send(b"".join(line + b"\r\n" for line in lines), deadline)
        replies = s.ctl.sync(deadline, end_line=True)
        self._absorb(s, replies)
        return replies

    def _absorb(self, s: Session, replies: list[Reply]) -> None:
        """Follow the login state from the replies (230 logged in, 220 after REIN)."""
        for answer in replies:
            self._note(s, f"< {answer.first[:120]!r}")
            if answer.code == 230:
                s.logged_in = True
                self.stats.logins += 1
            elif answer.code == 226:
                self.stats.completed += 1
            elif answer.code == 220:
                s.logged_in = s.prot_p = False
            elif answer.first.startswith(b"200 PROT now "):
                s.prot_p = answer.first == b"200 PROT now Private."

    @staticmethod
    def _listener(host: str) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind((host, 0))
        sock.listen(16)
        sock.setblocking(False)
        return sock

    def _drain_sinks(self) -> None:
        for sink in self.sinks.values():
            for _ in range(64):
                try:
                    conn, _ = sink.accept()
                except (BlockingIOError, OSError):
                    break
                conn.close()


class _Parked(Closed):
    """The session was left open on purpose (it is in Fuzzer.parked)."""
