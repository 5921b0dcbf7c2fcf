"""Tests for ftpsup.supervisor.lifecycle: supervisord's states driven with explicit `now`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpsup.supervisor.lifecycle import (
    Action,
    CommitReplacement,
    DropReplacement,
    InstanceState,
    Kill,
    Lifecycle,
    Policy,
    Spawn,
    Terminate,
)

S = InstanceState
POLICY = Policy(startsecs=1, startretries=3, stopwaitsecs=10, ready_timeout=5, kill_grace=2)


def running(pid: int = 100, now: float = 0.0) -> Lifecycle:
    life, _ = Lifecycle(POLICY).start(now)
    life, _ = life.spawned(pid, now)
    life, _ = life.reported_ready(pid, now + 0.2)
    life, _ = life.tick(now + 1.0)
    assert life.state is S.RUNNING
    return life


def test_start_spawns_and_waits_in_starting() -> None:
    life, actions = Lifecycle(POLICY).start(0)
    assert (life.state, actions) == (S.STARTING, [Spawn()])


def test_ready_before_startsecs_stays_starting_until_the_tick() -> None:
    life, _ = Lifecycle(POLICY).start(0)
    life, _ = life.spawned(7, 0)
    life, _ = life.reported_ready(7, 0.3)
    assert life.state is S.STARTING
    life, actions = life.tick(0.9)
    assert (life.state, actions) == (S.STARTING, [])
    life, actions = life.tick(1.0)
    assert (life.state, actions) == (S.RUNNING, [])


def test_startsecs_zero_runs_as_soon_as_ready() -> None:
    life, _ = Lifecycle(Policy(startsecs=0)).start(0)
    life, _ = life.spawned(7, 0)
    life, _ = life.reported_ready(7, 0.1)
    assert life.state is S.RUNNING


def test_up_startsecs_without_ready_is_not_running() -> None:
    life, _ = Lifecycle(POLICY).start(0)
    life, _ = life.spawned(7, 0)
    life, _ = life.tick(3)
    assert life.state is S.STARTING


def test_failed_starts_back_off_one_second_more_each_then_fatal() -> None:
    life, _ = Lifecycle(POLICY).start(0)
    now = 0.0
    delays = []
    for pid in range(1, 5):
        life, _ = life.spawned(pid, now)
        life, actions = life.exited(pid, "exit status 2", now + 0.1)
        assert actions == []
        if life.state is S.FATAL:
            break
        assert life.state is S.BACKOFF
        retry_at = life.retry_at
        assert retry_at is not None
        delays.append(retry_at - (now + 0.1))
        life, actions = life.tick(retry_at - 0.01)
        assert actions == []
        now = retry_at
        life, actions = life.tick(now)
        assert (life.state, actions) == (S.STARTING, [Spawn()])
    assert delays == pytest.approx([1, 2, 3])
    assert (life.state, life.last_exit, life.failed_starts) == (S.FATAL, "exit status 2", 4)


def test_not_ready_within_ready_timeout_is_killed_and_counts_as_failed() -> None:
    life, _ = Lifecycle(POLICY).start(0)
    life, _ = life.spawned(9, 0)
    life, actions = life.tick(5)
    assert actions == [Kill(9)]
    assert life.state is S.BACKOFF
    assert life.last_exit == "not ready within 5 s"
    assert 9 in life.pids
    life, _ = life.exited(9, "killed by SIGKILL", 5.1)
    assert 9 not in life.pids
    assert life.last_exit == "not ready within 5 s"


def test_unexpected_exit_of_running_process_restarts_at_once() -> None:
    life = running()
    life, actions = life.exited(100, "killed by SIGKILL", 50)
    assert (life.state, actions) == (S.STARTING, [Spawn()])
    assert (life.restarts, life.last_exit, life.failed_starts) == (1, "killed by SIGKILL", 0)


def test_exit_after_startsecs_counts_as_running_even_before_the_tick() -> None:
    life, _ = Lifecycle(POLICY).start(0)
    life, _ = life.spawned(7, 0)
    life, _ = life.reported_ready(7, 0.5)
    life, actions = life.exited(7, "exit status 1", 1.5)
    assert (life.state, actions, life.restarts) == (S.STARTING, [Spawn()], 1)


def test_a_good_start_forgets_earlier_failures() -> None:
    life, _ = Lifecycle(POLICY).start(0)
    life, _ = life.spawned(1, 0)
    life, _ = life.exited(1, "exit status 1", 0.1)
    assert life.failed_starts == 1
    life, _ = life.tick(2)
    life, _ = life.spawned(2, 2)
    life, _ = life.reported_ready(2, 2.1)
    life, _ = life.tick(3)
    assert (life.state, life.failed_starts) == (S.RUNNING, 0)


def test_stop_terminates_then_kills_after_stopwaitsecs_and_grace() -> None:
    life = running()
    life, actions = life.stop(20)
    assert (life.state, actions) == (S.STOPPING, [Terminate(100)])
    life, actions = life.tick(31.9)
    assert actions == []
    life, actions = life.tick(32)
    assert actions == [Kill(100)]
    life, actions = life.tick(33)
    assert actions == []
    life, _ = life.exited(100, "killed by SIGKILL", 33)
    assert (life.state, life.pid, life.pids) == (S.STOPPED, None, ())


def test_stop_while_draining_ends_without_kill() -> None:
    life = running()
    life, _ = life.stop(20)
    life, _ = life.exited(100, "exit status 0", 22)
    assert (life.state, life.last_exit) == (S.STOPPED, "exit status 0")
    assert life.tick(100)[1] == []


@pytest.mark.parametrize("state", [S.BACKOFF, S.FATAL, S.EXITED])
def test_stop_of_an_instance_without_process_is_immediate(state: InstanceState) -> None:
    life, actions = Lifecycle(POLICY, state=state).stop(0)
    assert (life.state, actions) == (S.STOPPED, [])


@pytest.mark.parametrize("state", [S.STOPPED, S.FATAL, S.BACKOFF, S.EXITED])
def test_start_from_an_idle_state_spawns_and_resets_failures(state: InstanceState) -> None:
    life, actions = Lifecycle(POLICY, state=state, failed_starts=4).start(0)
    assert (life.state, actions, life.failed_starts) == (S.STARTING, [Spawn()], 0)


def test_start_while_running_does_nothing() -> None:
    life = running()
    assert life.start(5) == (life, [])


def test_start_while_stopping_spawns_anew_and_keeps_the_old_kill_deadline() -> None:
    life = running()
    life, _ = life.stop(10)
    life, actions = life.start(11)
    assert (life.state, actions) == (S.STARTING, [Spawn()])
    assert [(r.pid, r.kill_at) for r in life.retiring] == [(100, 22)]


def test_restart_spawns_a_replacement_while_the_old_process_serves() -> None:
    life = running()
    life, actions = life.restart(10)
    assert (life.state, life.pid, actions) == (S.RUNNING, 100, [Spawn(replacement=True)])
    life, actions = life.spawned(200, 10.1)
    assert (life.pid, life.replacement, actions) == (100, 200, [])
    life, actions = life.reported_ready(200, 10.5)
    assert actions == [CommitReplacement(), Terminate(100)]
    assert (life.pid, life.replacement, life.state) == (200, None, S.STARTING)
    assert [(r.pid, r.kill_at) for r in life.retiring] == [(100, 22.5)]
    life, _ = life.tick(11.1)
    assert life.state is S.RUNNING
    life, actions = life.exited(100, "exit status 0", 12)
    assert (life.state, life.pids, life.restarts, actions) == (S.RUNNING, (200,), 0, [])


def test_a_draining_process_is_killed_at_its_deadline() -> None:
    life = running()
    life, _ = life.restart(10)
    life, _ = life.spawned(200, 10)
    life, _ = life.reported_ready(200, 10)
    life, actions = life.tick(22)
    assert actions == [Kill(100)]
    assert life.tick(23)[1] == []


def test_a_replacement_that_exits_before_ready_is_dropped_and_the_old_one_stays() -> None:
    life = running()
    life, _ = life.restart(10)
    life, _ = life.spawned(200, 10)
    life, actions = life.exited(200, "exit status 2: bad config", 10.5)
    assert actions == [DropReplacement()]
    assert (life.state, life.pid, life.replacing) == (S.RUNNING, 100, False)
    assert life.last_exit == "replacement exited before it was ready: exit status 2: bad config"


def test_a_replacement_that_hangs_is_killed_and_dropped() -> None:
    life = running()
    life, _ = life.restart(10)
    life, _ = life.spawned(200, 10)
    life, actions = life.tick(15)
    assert actions == [DropReplacement(), Kill(200)]
    assert (life.pid, life.state) == (100, S.RUNNING)


def test_a_replacement_that_cannot_be_spawned_leaves_the_old_one() -> None:
    life = running()
    life, _ = life.restart(10)
    life, actions = life.spawn_failed("no such file", 10)
    assert actions == [DropReplacement()]
    assert (life.pid, life.replacing, life.last_exit) == (
        100,
        False,
        "replacement not started: no such file",
    )


def test_crash_of_the_old_process_during_restart_promotes_the_replacement() -> None:
    life = running()
    life, _ = life.restart(10)
    life, _ = life.spawned(200, 10)
    life, actions = life.exited(100, "killed by SIGSEGV", 10.2)
    assert actions == [CommitReplacement()]
    assert (life.state, life.pid, life.replacement, life.restarts) == (S.STARTING, 200, None, 1)
    life, _ = life.reported_ready(200, 10.4)
    life, _ = life.tick(11)
    assert life.state is S.RUNNING


def test_stop_during_restart_stops_the_replacement_too() -> None:
    life = running()
    life, _ = life.restart(10)
    life, _ = life.spawned(200, 10)
    life, actions = life.stop(11)
    assert actions == [DropReplacement(), Terminate(200), Terminate(100)]
    assert set(life.pids) == {100, 200}


def test_restart_of_a_stopped_instance_starts_it() -> None:
    life, actions = Lifecycle(POLICY).restart(0)
    assert (life.state, actions) == (S.STARTING, [Spawn()])


def test_events_for_unknown_pids_change_nothing() -> None:
    life = running()
    assert life.exited(999, "exit status 0", 5) == (life, [])
    assert life.reported_ready(999, 5) == (life, [])


EVENTS = st.lists(
    st.sampled_from(["start", "stop", "restart", "spawn", "fail", "ready", "exit", "tick"]),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_any_event_sequence_keeps_the_bookkeeping_consistent(events: list[str]) -> None:
    """Whatever happens, every process spawned is tracked until it exits, and only once."""
    life = Lifecycle(POLICY)
    now, next_pid, alive = 0.0, 1, set[int]()
    pending: list[Action] = []
    for event in events:
        now += 0.7
        if event == "spawn" and any(isinstance(a, Spawn) for a in pending):
            pending = [a for a in pending if not isinstance(a, Spawn)]
            life, more = life.spawned(next_pid, now)
            alive.add(next_pid)
            next_pid += 1
        elif event == "fail" and any(isinstance(a, Spawn) for a in pending):
            pending = [a for a in pending if not isinstance(a, Spawn)]
            life, more = life.spawn_failed("cannot", now)
        elif event == "ready" and life.pids:
            life, more = life.reported_ready(max(life.pids), now)
        elif event == "exit" and alive:
            pid = min(alive)
            alive.discard(pid)
            life, more = life.exited(pid, "exit status 1", now)
        elif event in ("start", "stop", "restart", "tick") and not any(
            isinstance(a, Spawn) for a in pending
        ):
            life, more = getattr(life, event)(now)
        else:
            continue
        pending += more
        assert set(life.pids) <= alive
        assert len(life.pids) == len(set(life.pids))
        if life.state in (S.STOPPED, S.FATAL, S.BACKOFF):
            assert life.pid is None
        if life.state is S.RUNNING:
            assert life.pid is not None
