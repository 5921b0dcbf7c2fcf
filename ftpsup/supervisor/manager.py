"""The running instances: carry out lifecycle actions and answer the admin's commands.

Theory of operation: each instance is a Managed record holding its configuration, the
listening socket the supervisor bound for it, its Lifecycle and its live processes. Every
change goes through `step`, which feeds one event to the Lifecycle (under the instance's
lock, so events never interleave) and carries out the actions it returns: spawn, terminate,
kill, commit or drop a replacement. One task per process waits for it to exit and relays its
"ready" report; a ticker feeds the clock.

Rules:
1. The listening socket stays open while the instance is meant to serve (STARTING, RUNNING,
   BACKOFF): a crash or a restart never refuses a connection. It is closed as soon as the
   instance is stopped or FATAL, so clients are refused at once instead of waiting.
2. Commands that change instances (start, stop, and restart and reload in changes.py) run one
   at a time, under `admin_lock`.
3. Every wait is bounded by the policy's timeouts.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs
import trio

from ftpsup import listeners
from ftpsup.config.schema import InstanceConfig
from ftpsup.supervisor import spawn
from ftpsup.supervisor.ctl import Response
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
from ftpsup.supervisor.status import instance_status, read_leases
from ftpsup.users import accounts

TICK_SECONDS = 0.1
QUERY_SECONDS = 1.0
CLOSED_STATES = (InstanceState.STOPPING, InstanceState.STOPPED, InstanceState.FATAL)

Event = Callable[[Lifecycle], tuple[Lifecycle, list[Action]]]


def policy_of(config: InstanceConfig) -> Policy:
    """The restart policy an instance's configuration sets."""
    return Policy(
        startsecs=float(config.startsecs),
        startretries=config.startretries,
        stopwaitsecs=float(config.stopwaitsecs),
    )


@attrs.define(eq=False)
class Managed:
    """One instance as the supervisor runs it."""

    config: InstanceConfig
    listener: socket.socket | None
    life: Lifecycle
    children: dict[int, spawn.Child] = attrs.field(factory=dict)
    pending_config: InstanceConfig | None = None
    pending_listener: socket.socket | None = None
    lock: trio.Lock = attrs.field(factory=trio.Lock)
    changed: trio.Event = attrs.field(factory=trio.Event)

    @property
    def name(self) -> str:
        return self.config.name


def serving(life: Lifecycle) -> bool:
    return life.state is InstanceState.RUNNING or (
        life.state is InstanceState.STARTING and life.ready
    )


def _ready(pid: int) -> Event:
    return lambda life: life.reported_ready(pid, trio.current_time())


def settled(m: Managed) -> bool:
    """A start or replacement has an outcome: serving, or failed."""
    life = m.life
    return not life.replacing and (life.state is not InstanceState.STARTING or life.ready)


def stopped(m: Managed) -> bool:
    return m.life.state is InstanceState.STOPPED and not m.life.pids


def bind_for(config: InstanceConfig) -> socket.socket:
    return listeners.bind_listener(config.listen_address, config.listen_port)


class Supervisor:
    """Every instance of one configuration directory."""

    def __init__(
        self,
        config_dir: Path,
        configs: Iterable[InstanceConfig],
        listeners: dict[str, socket.socket],
        log: logging.Logger,
    ) -> None:
        self.config_dir = config_dir
        self.log = log
        self.instances: dict[str, Managed] = {
            c.name: Managed(c, listeners.get(c.name), Lifecycle(policy_of(c))) for c in configs
        }
        self.state_dir = next(iter(self.instances.values())).config.state_dir
        self.admin_lock = trio.Lock()
        self.started_at = trio.current_time()
        self._nursery: trio.Nursery | None = None

    # -- running -------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the process watchers and the clock until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._tick)
            task_status.started()

    async def _tick(self) -> None:
        while True:
            await trio.sleep(TICK_SECONDS)
            for m in list(self.instances.values()):
                await self.step(m, lambda life: life.tick(trio.current_time()))

    async def step(self, m: Managed, event: Event) -> None:
        """Feed one event to an instance's lifecycle and carry out the actions."""
        async with m.lock:
            await self._step_locked(m, event)

    async def _step_locked(self, m: Managed, event: Event) -> None:
        before = m.life
        m.life, actions = event(m.life)
        if m.life.state is not before.state:
            self.log.info("%s: %s -> %s", m.name, before.state.value, m.life.state.value)
        for action in actions:
            await self._carry_out(m, action)
        if m.life.state in CLOSED_STATES and m.listener is not None:
            m.listener.close()
            m.listener = None
        if m.life != before:
            m.changed.set()
            m.changed = trio.Event()

    async def _carry_out(self, m: Managed, action: Action) -> None:
        if isinstance(action, Spawn):
            await self._spawn(m, replacement=action.replacement)
        elif isinstance(action, Terminate | Kill):
            child = m.children.get(action.pid)
            if child is not None:
                is_kill = isinstance(action, Kill)
                self.log.info(
                    "%s: %s pid %d", m.name, "killing" if is_kill else "stopping", child.pid
                )
                child.signal(signal.SIGKILL if is_kill else signal.SIGTERM)
        elif isinstance(action, CommitReplacement):
            config = m.pending_config or m.config
            listener = m.pending_listener or m.listener
            if m.listener is not None and listener is not m.listener:
                m.listener.close()
            m.config, m.listener = config, listener
            m.pending_config = m.pending_listener = None
            m.life = attrs.evolve(m.life, policy=policy_of(config))
        elif isinstance(action, DropReplacement):
            if m.pending_listener is not None and m.pending_listener is not m.listener:
                m.pending_listener.close()
            m.pending_config = m.pending_listener = None

    async def _spawn(self, m: Managed, *, replacement: bool) -> None:
        config = (m.pending_config or m.config) if replacement else m.config
        listener = (m.pending_listener or m.listener) if replacement else m.listener
        try:
            if listener is None:
                raise OSError("no listening socket")
            account = accounts.instance_account(config)
            problems = await trio.to_thread.run_sync(accounts.prepare_paths, config, account)
            if problems:
                raise OSError("; ".join(str(problem) for problem in problems))
            if account is None and os.geteuid() == 0:
                self.log.warning(
                    "%s: run_as_root = true: the instance runs as root, with every privilege",
                    m.name,
                )
            child = await spawn.open_child(config, listener)
        except (OSError, accounts.AccountError) as exc:
            reason = f"cannot start: {exc}"
            self.log.error("%s: %s", m.name, reason)
            await self._step_locked(m, lambda life: life.spawn_failed(reason, trio.current_time()))
            return
        m.children[child.pid] = child
        self.log.info("%s: started pid %d", m.name, child.pid)
        assert self._nursery is not None
        self._nursery.start_soon(self._watch, m, child)
        await self._step_locked(m, lambda life: life.spawned(child.pid, trio.current_time()))

    async def _watch(self, m: Managed, child: spawn.Child) -> None:
        events_send, events = trio.open_memory_channel[dict[str, object]](16)
        lines_send, lines = trio.open_memory_channel[str](256)
        output_done = trio.Event()

        async def read_output() -> None:
            async with lines_send:
                await child.serve_output(lines_send)
            output_done.set()

        async def relay() -> None:
            async with events_send:
                await child.serve_messages(events_send)

        async def log_lines() -> None:
            async for line in lines:
                self.log.warning("%s[%d]: %s", m.name, child.pid, line)

        async def on_events() -> None:
            async for message in events:
                if message.get("event") == "ready":
                    await self.step(m, _ready(child.pid))

        async with trio.open_nursery() as nursery:
            for task in (read_output, relay, log_lines, on_events):
                nursery.start_soon(task)
            await child.process.wait()
            with trio.move_on_after(2):
                await output_done.wait()
            nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            await child.channel.aclose()
        reason = spawn.exit_reason(child.process.returncode, list(child.output_tail))
        self.log.info("%s: pid %d ended: %s", m.name, child.pid, reason)
        m.children.pop(child.pid, None)
        await self.step(m, lambda life: life.exited(child.pid, reason, trio.current_time()))

    async def wait(self, ms: list[Managed], done: Callable[[Managed], bool]) -> None:
        """Wait until `done` holds for each instance, bounded by its policy's timeouts."""
        for m in ms:
            policy = m.life.policy
            limit = policy.ready_timeout + policy.stopwaitsecs + policy.kill_grace + 5
            with trio.move_on_after(limit):
                while not done(m):
                    await m.changed.wait()

    # -- commands --------------------------------------------------------------------------

    def select(self, names: Iterable[str]) -> list[Managed] | Response:
        """The named instances (all for none or `all`), or an error response."""
        wanted = list(names)
        if not wanted or wanted == ["all"]:
            return list(self.instances.values())
        unknown = [n for n in wanted if n not in self.instances]
        if unknown:
            known = ", ".join(self.instances) or "none"
            return Response(False, (f"no such instance: {', '.join(unknown)} (known: {known})",))
        return [self.instances[n] for n in dict.fromkeys(wanted)]

    def outcome(self, m: Managed, old_pid: int | None = None) -> tuple[bool, str]:
        """Whether a start (or the replacement of `old_pid`) worked, in a line for the admin."""
        life = m.life
        if serving(life) and life.pid is not None and life.pid != old_pid:
            address = listeners.where(m.config.listen_address, m.config.listen_port)
            if old_pid is not None:
                return True, (
                    f"{m.name}: restarted, pid {life.pid} listening on {address}; "
                    f"pid {old_pid} finishes its sessions"
                )
            return True, f"{m.name}: {life.state.value}, pid {life.pid}, listening on {address}"
        if old_pid is not None and life.pid == old_pid:
            return False, f"{m.name}: not restarted, pid {old_pid} goes on: {life.last_exit}"
        text = f"{m.name}: {life.state.value}: {life.last_exit or 'not started'}"
        if life.state is InstanceState.BACKOFF and life.retry_at is not None:
            text += f" (retrying in {max(0.0, life.retry_at - trio.current_time()):.0f} s)"
        return False, text

    async def start(self, names: Iterable[str]) -> Response:
        """Start the named (or all) instances and wait until each serves or has failed."""
        async with self.admin_lock:
            selected = self.select(names)
            if isinstance(selected, Response):
                return selected
            ok, messages, started = True, [], []
            for m in selected:
                if m.life.state in (InstanceState.STARTING, InstanceState.RUNNING):
                    messages.append(f"{m.name}: already {m.life.state.value}")
                    continue
                if m.listener is None:
                    try:
                        m.listener = bind_for(m.config)
                    except listeners.ListenError as exc:
                        ok = False
                        messages.append(f"{m.name}: {exc}")
                        continue
                await self.step(m, lambda life: life.start(trio.current_time()))
                started.append(m)
            await self.wait(started, lambda m: m.life.state is not InstanceState.STARTING)
            for m in started:
                good, text = self.outcome(m)
                ok &= good
                messages.append(text)
            return Response(ok, tuple(messages))

    async def stop(self, names: Iterable[str]) -> Response:
        """Stop the named (or all) instances: each drains up to stopwaitsecs, then ends."""
        async with self.admin_lock:
            selected = self.select(names)
            if isinstance(selected, Response):
                return selected
            for m in selected:
                await self.step(m, lambda life: life.stop(trio.current_time()))
            await self.wait(selected, stopped)
            messages = [f"{m.name}: {m.life.state.value}" for m in selected]
            ok = all(m.life.state is InstanceState.STOPPED for m in selected)
            return Response(ok, tuple(messages))

    async def status(self) -> Response:
        """Every instance's state, processes, sessions and passive-port leases."""
        now = trio.current_time()
        answers: dict[int, dict[str, object] | None] = {}

        async def ask(child: spawn.Child) -> None:
            answers[child.pid] = None
            with trio.move_on_after(QUERY_SECONDS):
                answers[child.pid] = await child.query()

        async with trio.open_nursery() as nursery:
            for m in self.instances.values():
                for child in m.children.values():
                    nursery.start_soon(ask, child)
        ranges = {(m.config.pasv_min_port, m.config.pasv_max_port) for m in self.instances.values()}
        leases = await trio.to_thread.run_sync(read_leases, self.state_dir / "ports", ranges)
        instances = [
            instance_status(m.config, m.life, now, answers, leases) for m in self.instances.values()
        ]
        data: dict[str, object] = {
            "supervisor": {
                "pid": os.getpid(),
                "uptime": now - self.started_at,
                "config_dir": str(self.config_dir),
                "state_dir": str(self.state_dir),
            },
            "instances": instances,
            "leases": [attrs.asdict(lease) for lease in leases],
        }
        return Response(True, (), data)

    def reopen_logs(self) -> Response:
        """Reopen the supervisor's log and ask every instance process to reopen its own."""
        count = 0
        for m in self.instances.values():
            for child in m.children.values():
                child.signal(signal.SIGUSR1)
                count += 1
        return Response(True, (f"log files reopened ({count} instance process(es) signalled)",))
