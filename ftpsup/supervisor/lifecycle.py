"""The life of one instance under the supervisor: a pure state machine, `now` passed in.

The states and the policy keys are supervisord's (STOPPED, STARTING, RUNNING, BACKOFF,
STOPPING, EXITED, FATAL; startsecs, startretries, stopwaitsecs), so an admin who knows
supervisorctl reads `ftpsup status` without a manual.

Rules:
1. No I/O and no clock: every event method takes the monotonic `now` and returns the new
   (immutable) Lifecycle plus the actions the caller must carry out, in order.
2. A start succeeds when the process has reported "ready" (it is accepting) and has stayed up
   `startsecs`. A process that exits, or is not ready within `ready_timeout`, before that is a
   failed start: BACKOFF for 1 s more per failure in a row, FATAL after `startretries` retries.
3. A RUNNING process that exits without being asked to is started again at once (an
   unexpected exit is counted in `restarts`; repeated failures then go through rule 2).
4. Stopping sends Terminate (the instance stops accepting and drains for `stopwaitsecs`) and
   Kill when the process is still there `kill_grace` seconds after that.
5. A restart never leaves the port without an acceptor: the replacement is spawned while the
   old process keeps serving, and the old one is terminated only once the replacement reported
   ready. A replacement that fails is dropped and the old process stays.
6. Every process ever spawned is tracked until it has exited, so a stop can wait for all of
   them and a draining process is killed on time.

Transitions (event: from -> to):

    start     STOPPED, EXITED, FATAL, BACKOFF, STOPPING -> STARTING   (Spawn)
    ready     STARTING -> RUNNING once up startsecs; replacement ready -> STARTING (handover)
    exited    STARTING -> BACKOFF | FATAL; RUNNING -> STARTING (Spawn); STOPPING -> STOPPED
    stop      STARTING, RUNNING -> STOPPING (Terminate); BACKOFF, EXITED, FATAL -> STOPPED
    restart   RUNNING -> RUNNING (Spawn replacement); otherwise as start
    tick      BACKOFF -> STARTING when due; STARTING -> RUNNING; timeouts -> Kill
"""

from __future__ import annotations

import enum

import attrs


class InstanceState(enum.Enum):
    """supervisord's process states."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"


@attrs.frozen
class Policy:
    """When a start counts as good, how often to retry, how long a stop may drain (seconds)."""

    startsecs: float = 1.0
    startretries: int = 3
    stopwaitsecs: float = 30.0
    # How long a new process may take to report ready before it counts as hung.
    ready_timeout: float = 30.0
    # The instance ends its own drain at stopwaitsecs; Kill is the backstop after this margin.
    kill_grace: float = 5.0


@attrs.frozen
class Spawn:
    """Start a process; report `spawned` or `spawn_failed` before any other event."""

    replacement: bool = False


@attrs.frozen
class Terminate:
    """Ask the process to stop accepting and drain (SIGTERM)."""

    pid: int


@attrs.frozen
class Kill:
    """End the process now (SIGKILL)."""

    pid: int


@attrs.frozen
class CommitReplacement:
    """The replacement is now the instance's process: switch to its configuration."""


@attrs.frozen
class DropReplacement:
    """The replacement failed: forget its configuration; the old process stays."""


Action = Spawn | Terminate | Kill | CommitReplacement | DropReplacement


@attrs.frozen
class Retiring:
    """A process on its way out: it was terminated, or was replaced, or timed out."""

    pid: int
    kill_at: float
    killed: bool = False


_IDLE = frozenset({InstanceState.STOPPED, InstanceState.EXITED, InstanceState.FATAL})
_STARTABLE = _IDLE | {InstanceState.BACKOFF, InstanceState.STOPPING}


@attrs.frozen
class Lifecycle:
    """One instance's state; every event method returns (new Lifecycle, actions)."""

    policy: Policy = Policy()
    state: InstanceState = InstanceState.STOPPED
    pid: int | None = None
    started_at: float | None = None
    ready: bool = False
    failed_starts: int = 0
    retry_at: float | None = None
    stop_at: float | None = None
    awaiting_replacement: bool = False
    replacement: int | None = None
    replacement_started: float | None = None
    retiring: tuple[Retiring, ...] = ()
    restarts: int = 0
    last_exit: str = ""

    # -- queries ---------------------------------------------------------------------------

    @property
    def pids(self) -> tuple[int, ...]:
        """Every live process this instance has: current, replacement, retiring."""
        found = [p for p in (self.pid, self.replacement) if p is not None]
        return (*found, *(r.pid for r in self.retiring))

    @property
    def replacing(self) -> bool:
        """A replacement is being started."""
        return self.awaiting_replacement or self.replacement is not None

    def uptime(self, now: float) -> float | None:
        """Seconds the current process has been up, or None without one."""
        return None if self.started_at is None or self.pid is None else now - self.started_at

    # -- commands --------------------------------------------------------------------------

    def start(self, now: float) -> tuple[Lifecycle, list[Action]]:
        """An admin asked for the instance to run; a manual start forgets earlier failures."""
        if self.state not in _STARTABLE:
            return self, []
        base = self._retire_current(now) if self.state is InstanceState.STOPPING else self
        return base._spawn_current(failed_starts=0)

    def stop(self, now: float) -> tuple[Lifecycle, list[Action]]:
        """An admin asked for the instance to stop: drain, then end."""
        if self.state in (InstanceState.STARTING, InstanceState.RUNNING):
            actions: list[Action] = []
            base = self
            if self.replacing:
                base, actions = self._drop_replacement(now, "replacement stopped")
            if base.pid is None:
                return attrs.evolve(base, state=InstanceState.STOPPED), actions
            stop_at = now + self.policy.stopwaitsecs + self.policy.kill_grace
            after = attrs.evolve(base, state=InstanceState.STOPPING, stop_at=stop_at)
            return after, [*actions, Terminate(base.pid)]
        if self.state in (InstanceState.BACKOFF, InstanceState.EXITED, InstanceState.FATAL):
            return attrs.evolve(self, state=InstanceState.STOPPED, retry_at=None), []
        return self, []

    def restart(self, now: float) -> tuple[Lifecycle, list[Action]]:
        """Replace the process gracefully when it serves; otherwise start it."""
        if self.state is InstanceState.RUNNING or (
            self.state is InstanceState.STARTING and self.ready
        ):
            if self.replacing:
                return self, []
            return attrs.evolve(self, awaiting_replacement=True), [Spawn(replacement=True)]
        if self.state is InstanceState.STARTING:
            # Not serving yet, so nothing to hand over: begin again.
            return self._retire_current(now)._spawn_current(failed_starts=0)
        return self.start(now)

    # -- process events --------------------------------------------------------------------

    def spawned(self, pid: int, now: float) -> tuple[Lifecycle, list[Action]]:
        """The process asked for by the last Spawn exists."""
        if self.awaiting_replacement:
            return attrs.evolve(
                self, awaiting_replacement=False, replacement=pid, replacement_started=now
            ), []
        return attrs.evolve(self, pid=pid, started_at=now, ready=False), []

    def spawn_failed(self, reason: str, now: float) -> tuple[Lifecycle, list[Action]]:
        """The last Spawn could not create a process."""
        if self.awaiting_replacement:
            after = attrs.evolve(
                self, awaiting_replacement=False, last_exit=f"replacement not started: {reason}"
            )
            return after, [DropReplacement()]
        return self._failed_start(reason, now)

    def reported_ready(self, pid: int, now: float) -> tuple[Lifecycle, list[Action]]:
        """Process `pid` is accepting connections."""
        if pid == self.replacement:
            old = self.pid
            retiring = self.retiring
            actions: list[Action] = [CommitReplacement()]
            if old is not None:
                kill_at = now + self.policy.stopwaitsecs + self.policy.kill_grace
                retiring = (*retiring, Retiring(old, kill_at))
                actions.append(Terminate(old))
            after = attrs.evolve(
                self,
                state=InstanceState.STARTING,
                pid=pid,
                started_at=self.replacement_started,
                ready=True,
                replacement=None,
                replacement_started=None,
                retiring=retiring,
            )
            after, more = after._promote_if_due(now)
            return after, [*actions, *more]
        if pid == self.pid and self.state is InstanceState.STARTING:
            return attrs.evolve(self, ready=True)._promote_if_due(now)
        return self, []

    def exited(self, pid: int, reason: str, now: float) -> tuple[Lifecycle, list[Action]]:
        """Process `pid` has ended; `reason` says how ("exit status 1", "killed by SIGKILL")."""
        if any(r.pid == pid for r in self.retiring):
            return attrs.evolve(self, retiring=tuple(r for r in self.retiring if r.pid != pid)), []
        if pid == self.replacement:
            after = attrs.evolve(
                self,
                replacement=None,
                replacement_started=None,
                last_exit=f"replacement exited before it was ready: {reason}",
            )
            return after, [DropReplacement()]
        if pid != self.pid:
            return self, []
        if self.state is InstanceState.STOPPING:
            after = attrs.evolve(
                self, state=InstanceState.STOPPED, pid=None, started_at=None, stop_at=None
            )
            return attrs.evolve(after, ready=False, last_exit=reason), []
        good_start = (
            self.ready
            and self.started_at is not None
            and now - self.started_at >= self.policy.startsecs
        )
        if self.state is InstanceState.RUNNING or good_start or self.replacing:
            return self._unexpected_exit(reason, now)
        return self._failed_start(reason, now)

    def tick(self, now: float) -> tuple[Lifecycle, list[Action]]:
        """Time passed: retry after backoff, promote to RUNNING, enforce every timeout."""
        life: Lifecycle = self
        actions: list[Action] = []
        if life.state is InstanceState.BACKOFF and life.retry_at is not None:
            if now >= life.retry_at:
                life, actions = life._spawn_current(failed_starts=life.failed_starts)
        elif life.state is InstanceState.STARTING and life.ready:
            life, actions = life._promote_if_due(now)
        elif (
            life.state is InstanceState.STARTING
            and life.pid is not None
            and life.started_at is not None
            and now - life.started_at >= life.policy.ready_timeout
        ):
            hung = life.pid
            life = attrs.evolve(
                life, pid=None, retiring=(*life.retiring, Retiring(hung, now, killed=True))
            )
            reason = f"not ready within {life.policy.ready_timeout:g} s"
            life, more = life._failed_start(reason, now)
            actions = [Kill(hung), *more]
        elif (
            life.state is InstanceState.STOPPING
            and life.stop_at is not None
            and now >= life.stop_at
            and life.pid is not None
        ):
            actions = [Kill(life.pid)]
            life = attrs.evolve(life, stop_at=None)
        if (
            life.replacement is not None
            and life.replacement_started is not None
            and now - life.replacement_started >= life.policy.ready_timeout
        ):
            reason = f"replacement not ready within {life.policy.ready_timeout:g} s"
            life, more = life._drop_replacement(now, reason, kill=True)
            actions = [*actions, *more]
        retiring = []
        for r in life.retiring:
            if not r.killed and now >= r.kill_at:
                actions.append(Kill(r.pid))
                r = attrs.evolve(r, killed=True)
            retiring.append(r)
        return attrs.evolve(life, retiring=tuple(retiring)), actions

    # -- helpers ---------------------------------------------------------------------------

    def _spawn_current(self, *, failed_starts: int) -> tuple[Lifecycle, list[Action]]:
        after = attrs.evolve(
            self,
            state=InstanceState.STARTING,
            pid=None,
            started_at=None,
            ready=False,
            failed_starts=failed_starts,
            retry_at=None,
            stop_at=None,
        )
        return after, [Spawn()]

    def _retire_current(self, now: float) -> Lifecycle:
        """Move the current process (being stopped, or not ready) to the retiring list."""
        if self.pid is None:
            return self
        kill_at = self.stop_at if self.stop_at is not None else now
        retiring = (*self.retiring, Retiring(self.pid, kill_at))
        return attrs.evolve(self, pid=None, started_at=None, retiring=retiring)

    def _promote_if_due(self, now: float) -> tuple[Lifecycle, list[Action]]:
        if self.started_at is not None and now - self.started_at >= self.policy.startsecs:
            return attrs.evolve(self, state=InstanceState.RUNNING, failed_starts=0), []
        return self, []

    def _failed_start(self, reason: str, now: float) -> tuple[Lifecycle, list[Action]]:
        failures = self.failed_starts + 1
        after = attrs.evolve(
            self, pid=None, started_at=None, ready=False, failed_starts=failures, last_exit=reason
        )
        if failures > self.policy.startretries:
            return attrs.evolve(after, state=InstanceState.FATAL, retry_at=None), []
        # supervisord's backoff: one more second of waiting per failed start in a row.
        return attrs.evolve(after, state=InstanceState.BACKOFF, retry_at=now + failures), []

    def _unexpected_exit(self, reason: str, now: float) -> tuple[Lifecycle, list[Action]]:
        counted = attrs.evolve(self, restarts=self.restarts + 1, last_exit=reason)
        if counted.replacement is not None:
            # The replacement is already on its way: it takes over instead of a new spawn.
            after = attrs.evolve(
                counted,
                state=InstanceState.STARTING,
                pid=counted.replacement,
                started_at=counted.replacement_started,
                ready=False,
                replacement=None,
                replacement_started=None,
            )
            return after, [CommitReplacement()]
        if counted.awaiting_replacement:
            # Its spawn is under way: the process it reports becomes the current one.
            after = attrs.evolve(
                counted,
                state=InstanceState.STARTING,
                pid=None,
                started_at=None,
                ready=False,
                awaiting_replacement=False,
            )
            return after, [CommitReplacement()]
        return counted._spawn_current(failed_starts=0)

    def _drop_replacement(
        self, now: float, reason: str, *, kill: bool = False
    ) -> tuple[Lifecycle, list[Action]]:
        after = attrs.evolve(
            self, awaiting_replacement=False, replacement=None, replacement_started=None
        )
        if self.replacement is None:
            return after, [DropReplacement()]
        gone = Retiring(self.replacement, now if kill else now + self.policy.kill_grace, kill)
        after = attrs.evolve(after, retiring=(*after.retiring, gone), last_exit=reason)
        stop: Action = Kill(self.replacement) if kill else Terminate(self.replacement)
        return after, [DropReplacement(), stop]
