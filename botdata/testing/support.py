"""Waiting in tests for what another task or process brings about."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], within: float = 5.0, every: float = 0.02
) -> bool:
    """Whether ``check()`` (awaited when it returns an awaitable) holds within ``within``
    seconds, trying every ``every`` seconds: for a condition that another task or process
    brings about, so a test waits as long as it takes and no longer. Returns False on time out;
    raises what ``check`` raises."""
    deadline = time.monotonic() + within
    while True:
        done = check()
        if inspect.isawaitable(done):
            done = await done
        if done:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
