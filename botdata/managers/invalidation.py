"""Cache invalidation for hot write paths: concurrent calls share one round trip.

:meth:`Cache.invalidate <botdata.cache.base.Cache.invalidate>` costs a round trip to the shared
backend (delete + announcement) per call. A manager that invalidates on every write of a busy
path (a case per moderation action, many moderators at once) goes through an
:class:`Invalidator` instead: while one invalidation is in flight, the keys of the callers that
arrive meanwhile are gathered and dropped together by the next one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botdata.cache import Cache


class Invalidator:
    """Drops cache keys like ``cache.invalidate``, coalescing concurrent calls."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        # Keys waiting for the next invalidation, and what completes when it is done.
        self._keys: set[str] = set()
        self._done: asyncio.Future[None] | None = None
        self._running: asyncio.Task[None] | None = None

    async def invalidate(self, key: str) -> None:
        """Drop ``key`` here, in the shared backend and in every other process's hot layer.

        Returns once a ``cache.invalidate`` that started after this call has completed, so on
        return the guarantees of :meth:`Cache.invalidate` hold for ``key``. Call it after the
        database change is committed. Raises what ``cache.invalidate`` raises (nothing, for the
        botdata caches: they are best-effort).
        """
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        done = self._done
        self._keys.add(key)
        if self._running is None:
            self._running = asyncio.create_task(self._run())
        # Shielded: a cancelled caller must not cancel the others' invalidation.
        await asyncio.shield(done)

    async def _run(self) -> None:
        """Invalidate the gathered keys, batch after batch, until no caller is waiting."""
        done: asyncio.Future[None] | None = None
        try:
            while self._keys:
                keys, done = self._keys, self._done
                self._keys, self._done = set(), None
                try:
                    await self.cache.invalidate(*keys)
                except Exception as exc:
                    done.set_exception(exc)  # type: ignore[union-attr]
                else:
                    done.set_result(None)  # type: ignore[union-attr]
        finally:
            self._running = None
            # Cancelled (the loop is shutting down): release every caller still waiting.
            for waiting in (done, self._done):
                if waiting is not None and not waiting.done():
                    waiting.cancel()
