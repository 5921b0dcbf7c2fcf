"""ftpsup.server.workers.run_sync: a blocking call in a worker thread, under a limiter."""

from __future__ import annotations

import errno
import threading

import pytest
import trio
import trio.testing

from ftpsup.server.workers import run_sync

BOUND = 10.0


async def test_the_call_runs_in_another_thread_and_its_result_comes_back() -> None:
    here = threading.get_ident()
    with trio.fail_after(BOUND):
        ident = await run_sync(threading.get_ident, trio.CapacityLimiter(1))
    assert ident != here


async def test_an_exception_of_the_call_is_raised_in_the_caller() -> None:
    def fails() -> None:
        raise FileNotFoundError(errno.ENOENT, "gone", "/x")

    with trio.fail_after(BOUND), pytest.raises(FileNotFoundError) as caught:
        await run_sync(fails, trio.CapacityLimiter(1))
    assert caught.value.errno == errno.ENOENT


async def test_a_call_holds_a_limiter_token_until_it_returns() -> None:
    limiter = trio.CapacityLimiter(1)
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        order.append("first started")
        release.wait(BOUND)
        order.append("first done")

    def second() -> None:
        order.append("second started")

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_sync, first, limiter)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(run_sync, second, limiter)
            await trio.testing.wait_all_tasks_blocked()
            assert limiter.borrowed_tokens == 1
            assert limiter.statistics().tasks_waiting == 1
            release.set()
    assert order == ["first started", "first done", "second started"]
    assert limiter.borrowed_tokens == 0


async def test_a_cancelled_caller_waits_for_its_running_call() -> None:
    # The thread's work is never abandoned: the cancellation lands after it has returned.
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def slow() -> str:
        started.set()
        release.wait(BOUND)
        finished.append(True)
        return "done"

    got: list[str] = []

    async def caller(scope: trio.CancelScope) -> None:
        with scope:
            got.append(await run_sync(slow, trio.CapacityLimiter(1)))
            await trio.lowlevel.checkpoint()
            got.append("not reached")

    scope = trio.CancelScope()
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller, scope)
            await trio.to_thread.run_sync(started.wait, BOUND)
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert finished == []
            release.set()
    assert finished == [True]
    assert got == ["done"]
    assert scope.cancelled_caught


async def test_a_call_cancelled_while_waiting_for_the_limiter_never_starts() -> None:
    limiter = trio.CapacityLimiter(1)
    ran: list[bool] = []
    scope = trio.CancelScope()

    async def waiter() -> None:
        with scope:
            await run_sync(lambda: ran.append(True), limiter)

    with trio.fail_after(BOUND):
        async with limiter, trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert limiter.statistics().tasks_waiting == 1
            scope.cancel()
    assert scope.cancelled_caught
    assert ran == []
    assert limiter.borrowed_tokens == 0
