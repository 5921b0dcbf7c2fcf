"""What a fuzz run did: counts per action, time per action, stalls, anomalies, a transcript.

Theory of operation: each Fuzzer keeps one Stats; workers run side by side each fill their own,
and the driver adds them up for the report. Nothing here judges the run.
"""

from __future__ import annotations

import collections

import attrs

TRANSCRIPT_LINES = 400


@attrs.define
class Stats:
    """What a run did, for the report; `transcript` keeps the latest lines only."""

    seed: int
    sessions: int = 0
    logins: int = 0
    completed: int = 0
    actions: collections.Counter[str] = attrs.Factory(collections.Counter)
    # Seconds spent in each kind of action (waits for the server included).
    seconds: dict[str, float] = attrs.Factory(lambda: collections.defaultdict(float))
    stalls: list[str] = attrs.Factory(list)
    # Each distinct anomaly (broken framing, a missing greeting) and the sessions that met it.
    anomalies: dict[str, list[str]] = attrs.Factory(dict)
    transcript: collections.deque[str] = attrs.Factory(
        lambda: collections.deque(maxlen=TRANSCRIPT_LINES)
    )

    def add(self, other: Stats) -> None:
        """Count `other`'s run in this one (the transcript keeps the latest lines)."""
        self.sessions += other.sessions
        self.logins += other.logins
        self.completed += other.completed
        self.actions.update(other.actions)
        for name, seconds in other.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.stalls += other.stalls
        for anomaly, sessions in other.anomalies.items():
            self.anomalies.setdefault(anomaly, []).extend(sessions)
        self.transcript.extend(other.transcript)
