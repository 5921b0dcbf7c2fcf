"""Configuration changes while running: `ftpsup restart NAME` and `ftpsup reload`.

Rules:
1. All or nothing: every file is checked, and every socket a change needs is bound, before
   any instance is touched; on any problem nothing changes and every problem is reported.
2. A changed instance that serves is replaced gracefully (Lifecycle.restart): its new process
   starts on the listening socket (a new one only when the address or port changed), and the
   old one drains. New instance files are started, removed ones stopped.
3. `state_dir` cannot change while running: the control socket lives there.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path

import attrs
import trio

from ftpsup import listeners
from ftpsup.config.check import check
from ftpsup.config.schema import InstanceConfig
from ftpsup.supervisor.ctl import Response
from ftpsup.supervisor.lifecycle import InstanceState, Lifecycle
from ftpsup.supervisor.manager import (
    CLOSED_STATES,
    Managed,
    Supervisor,
    bind_for,
    policy_of,
    serving,
    settled,
    stopped,
)


async def restart(sup: Supervisor, names: Iterable[str]) -> Response:
    """Replace the named instances' processes gracefully, with their files as they are now."""
    async with sup.admin_lock:
        selected = sup.select(names)
        if isinstance(selected, Response):
            return selected
        configs = await _read_configs(sup, "restart")
        if isinstance(configs, Response):
            return configs
        missing = [m.name for m in selected if m.name not in configs]
        if missing:
            text = f"instance file gone: {', '.join(missing)}; use reload to remove it"
            return Response(False, (text,))
        chosen = {m.name: configs[m.name] for m in selected}
        return await _apply(sup, chosen, "restart", force=True)


async def reload(sup: Supervisor) -> Response:
    """Re-read every file; apply it all, or refuse it all and keep the running config."""
    async with sup.admin_lock:
        configs = await _read_configs(sup, "reload")
        if isinstance(configs, Response):
            return configs
        if any(c.state_dir != sup.state_dir for c in configs.values()):
            text = "state_dir cannot change while running: stop all, then start all"
            return Response(False, ("reload refused; the running configuration stays:", text))
        return await _apply(sup, configs, "reload", force=False, complete=True)


def _load_all(config_dir: Path) -> tuple[dict[str, InstanceConfig], list[str]]:
    """Every instance of the directory, or the problems that forbid using them (blocking)."""
    # The same judge as `ftpsup check` and `start`. It includes the certificates: one that
    # cannot serve would only show when the new process starts, after other instances were
    # already replaced; checked now, a reload stays all or nothing.
    checked = check([config_dir])
    if checked.errors:
        return {}, [str(p) for p in checked.errors]
    return {config.name: config for config in checked.configs}, []


async def _read_configs(sup: Supervisor, command: str) -> dict[str, InstanceConfig] | Response:
    configs, problems = await trio.to_thread.run_sync(_load_all, sup.config_dir)
    if problems:
        head = f"{command} refused; the running configuration stays:"
        return Response(False, (head, *problems))
    return configs


async def _apply(
    sup: Supervisor,
    configs: dict[str, InstanceConfig],
    command: str,
    *,
    force: bool,
    complete: bool = False,
) -> Response:
    # Stage: bind every socket a changed or new instance needs, or change nothing.
    staged: dict[str, tuple[InstanceConfig, socket.socket | None]] = {}
    problems: list[str] = []
    for name, config in configs.items():
        m = sup.instances.get(name)
        if m is not None and config == m.config and not force:
            continue
        wants_socket = m is None or m.life.state not in CLOSED_STATES or force
        listener = None if m is None else m.listener
        moved = m is not None and (config.listen_address, config.listen_port) != (
            m.config.listen_address,
            m.config.listen_port,
        )
        if wants_socket and (listener is None or moved):
            try:
                listener = bind_for(config)
            except listeners.ListenError as exc:
                problems.append(f"{name}: {exc}")
        staged[name] = (config, listener)
    if problems:
        for name, (_config, listener) in staged.items():
            m = sup.instances.get(name)
            if listener is not None and (m is None or listener is not m.listener):
                listener.close()
        head = f"{command} refused; the running configuration stays:"
        return Response(False, (head, *problems))
    removed = [m for n, m in sup.instances.items() if complete and n not in configs]
    messages: list[str] = []
    waits: list[tuple[Managed, int | None, str]] = []
    for name, (config, listener) in staged.items():
        m = sup.instances.get(name)
        if m is None:
            m = sup.instances[name] = Managed(config, listener, Lifecycle(policy_of(config)))
            await sup.step(m, lambda life: life.start(trio.current_time()))
            waits.append((m, None, " (new instance)"))
        elif serving(m.life):
            m.pending_config, m.pending_listener = config, listener
            old = m.life.pid
            await sup.step(m, lambda life: life.restart(trio.current_time()))
            waits.append((m, old, ""))
        else:
            if m.listener is not None and listener is not m.listener:
                m.listener.close()
            m.config, m.listener = config, listener
            m.life = attrs.evolve(m.life, policy=policy_of(config))
            if m.life.state is InstanceState.STOPPED and force:
                # `restart` of a stopped instance starts it, as supervisorctl's does.
                await sup.step(m, lambda life: life.start(trio.current_time()))
                waits.append((m, None, ""))
                continue
            if m.life.state in (InstanceState.STOPPED, InstanceState.STOPPING):
                messages.append(f"{name}: configuration updated; stays {m.life.state.value}")
                continue
            await sup.step(m, lambda life: life.restart(trio.current_time()))
            waits.append((m, None, ""))
    for m in removed:
        await sup.step(m, lambda life: life.stop(trio.current_time()))
    await sup.wait([m for m, _, _ in waits], settled)
    ok = True
    for m, old, note in waits:
        good, text = sup.outcome(m, old)
        ok &= good
        messages.append(text + note)
    await sup.wait(removed, stopped)
    for m in removed:
        messages.append(f"{m.name}: removed ({m.life.state.value})")
        del sup.instances[m.name]
    messages += [f"{name}: unchanged" for name in sorted(set(configs) - set(staged))]
    return Response(ok, tuple(messages))
