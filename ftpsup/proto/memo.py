"""remembered: a bounded LRU cache for pure functions, keeping their signature for mypy.

functools.lru_cache returns a wrapper typed as taking any hashable arguments, so a call with
a wrong argument type would no longer be caught. The functions given to it here are pure:
the same arguments always give the same answer, or raise the same exception (which is never
cached: each such call raises again).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")


def remembered(maxsize: int) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator: remember the answers for the `maxsize` most recently used arguments."""

    def wrap(fn: Callable[P, T]) -> Callable[P, T]:
        return cast("Callable[P, T]", functools.lru_cache(maxsize=maxsize)(fn))

    return wrap
