"""run_sync: run a blocking call in a worker thread, for less than trio.to_thread costs.

Theory of operation: trio.to_thread.run_sync renames its worker thread around every job (two
Thread.name changes and two pthread_setname_np calls through ctypes, each dropping and taking
the GIL again), copies the task's context and keeps the bookkeeping for trio.from_thread. A
session of the benchmark's row d makes three such trips (login, listing, opening the file),
and those extras were a tenth of the server's CPU. run_sync keeps what ftpsup needs of it:
trio's thread cache (trio.lowlevel.start_thread_soon, no renaming), the capacity limiter,
and the result or exception handed back to the waiting task through the run's token.

Rules:
- The call holds one token of `limiter` from before it starts until it has returned.
- The waiting task cannot be cancelled away from a running call (trio.to_thread's
  abandon_on_cancel=False): the thread's work is never left behind, and a cancellation
  takes effect at the caller's next checkpoint. A cancellation that comes before the call
  has started (while waiting for the limiter) stops it from starting at all.
- `fn` runs without the task's context variables and may not use trio.from_thread; ftpsup's
  blocking calls (file system, password checks) need neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import outcome
import trio

T = TypeVar("T")


async def run_sync(fn: Callable[[], T], limiter: trio.CapacityLimiter) -> T:
    """Call `fn()` in a worker thread and return its result (or raise its exception)."""
    await limiter.acquire()
    try:
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def deliver(result: outcome.Outcome[T]) -> None:
            # In the worker thread: wake the waiting task in the event loop's thread.
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        trio.lowlevel.start_thread_soon(fn, deliver)
        value: T = await trio.lowlevel.wait_task_rescheduled(_refuse_abort)
        return value
    finally:
        limiter.release()


def _refuse_abort(raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED
