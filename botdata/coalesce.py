"""Writes of hot paths that concurrent callers share: one flush carries everyone's items.

Some per-call writes cost a round trip each: dropping cached copies after every change (a
delete and an announcement in Redis: :meth:`botdata.cache.base.Cache.invalidate` groups them),
marking a reminder sent after every delivery (an ``UPDATE``, in the reminder dispatcher). A
:class:`Coalescer` sends them as they come, but never two at once: while one flush is in
flight, the items of the callers that arrive meanwhile are gathered and sent together by the
next one. A lone caller pays one round trip, as without it; under load the
round trips stay few.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalescer(Generic[T]):
    """Runs ``flush(items)`` for the items of concurrent :meth:`add` calls, one flush at a time."""

    def __init__(self, flush: Callable[[set[T]], Awaitable[None]]) -> None:
        self._flush = flush
        # Items waiting for the next flush, and what completes when it is done.
        self._items: set[T] = set()
        self._done: asyncio.Future[None] | None = None
        self._running: asyncio.Task[None] | None = None

    async def add(self, *items: T) -> None:
        """Have ``items`` flushed (together).

        Returns once a flush that started after this call, and carried ``items``, has
        completed. Raises what that flush raised (to every caller whose item it carried). A
        cancelled caller does not cancel the flush of the others' items, nor of its own.
        """
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        done = self._done
        self._items.update(items)
        if self._running is None:
            self._running = asyncio.create_task(self._run())
        await asyncio.shield(done)

    async def _run(self) -> None:
        """Flush the gathered items, batch after batch, until no caller is waiting."""
        done: asyncio.Future[None] | None = None
        try:
            # add() sets _done before its item, without awaiting: a batch has a future.
            while (done := self._done) is not None:
                items = self._items
                self._items, self._done = set(), None
                assert done is not None  # set by the add() that gave the items
                try:
                    await self._flush(items)
                except Exception as exc:
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        finally:
            self._running = None
            # Cancelled (the loop is shutting down): release every caller still waiting.
            for waiting in (done, self._done):
                if waiting is not None and not waiting.done():
                    waiting.cancel()
