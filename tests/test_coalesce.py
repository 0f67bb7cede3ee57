"""botdata.coalesce: concurrent flushes (here of cache invalidations, as ``Cache.invalidate``
groups them) share round trips, none is lost."""

from __future__ import annotations

import asyncio

import pytest

import botdata
from botdata.coalesce import Coalescer

KEYS = 20


async def warm(db: botdata.Database, count: int = KEYS) -> list[str]:
    """``count`` keys cached in the shared store and the hot layer."""
    keys = [db.cache.key("inv", i, guild_id=7) for i in range(count)]

    for i, key in enumerate(keys):

        async def load(i: int = i) -> int:
            return i

        await db.cache.get_or_load(key, load, 60, hot=True)
        assert db.cache.hot_get(key) == i
    return keys


def invalidations(db: botdata.Database) -> Coalescer[str]:
    """Cache keys dropped together."""

    async def invalidate(keys: set[str]) -> None:
        await db.cache.invalidate(*keys)

    return Coalescer(invalidate)


async def gone(db: botdata.Database, key: str) -> bool:
    return db.cache.hot_get(key) is None and await db.cache.get_json(key) is None


async def test_concurrent_calls_share_invalidations_and_each_key_is_gone_on_return(
    botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = await warm(botdata_db)
    calls: list[tuple[str, ...]] = []
    invalidate = botdata_db.cache.invalidate

    async def recording(*batch: str) -> None:
        calls.append(batch)
        await invalidate(*batch)

    monkeypatch.setattr(botdata_db.cache, "invalidate", recording)
    invalidator = invalidations(botdata_db)

    async def drop(key: str) -> bool:
        await invalidator.add(key)
        return await gone(botdata_db, key)

    assert await asyncio.gather(*(drop(key) for key in keys)) == [True] * KEYS
    assert len(calls) < KEYS
    assert sorted(key for batch in calls for key in batch) == sorted(keys)


async def test_keys_arriving_during_an_invalidation_wait_for_the_next(
    botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await warm(botdata_db, 2)
    started, release = asyncio.Event(), asyncio.Event()
    invalidate = botdata_db.cache.invalidate

    async def slow(*batch: str) -> None:
        started.set()
        await release.wait()
        await invalidate(*batch)

    monkeypatch.setattr(botdata_db.cache, "invalidate", slow)
    invalidator = invalidations(botdata_db)
    one = asyncio.create_task(invalidator.add(first))
    await started.wait()
    two = asyncio.create_task(invalidator.add(second))
    await asyncio.sleep(0.01)
    assert not one.done()
    assert not two.done()
    assert botdata_db.cache.hot_get(second) == 1  # not dropped by the invalidation already running
    release.set()
    await asyncio.gather(one, two)
    assert await gone(botdata_db, first)
    assert await gone(botdata_db, second)


async def test_a_cancelled_caller_does_not_stop_the_others(botdata_db: botdata.Database) -> None:
    first, second = await warm(botdata_db, 2)
    invalidator = invalidations(botdata_db)
    one = asyncio.create_task(invalidator.add(first))
    two = asyncio.create_task(invalidator.add(second))
    await asyncio.sleep(0)
    one.cancel()
    await two
    assert one.cancelled()
    assert await gone(botdata_db, second)
    assert await gone(botdata_db, first)  # its invalidation ran all the same


async def test_a_failing_invalidation_reaches_its_callers_only(
    botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    [key] = await warm(botdata_db, 1)
    invalidate = botdata_db.cache.invalidate

    async def failing(*batch: str) -> None:
        raise RuntimeError("cache broke")

    monkeypatch.setattr(botdata_db.cache, "invalidate", failing)
    invalidator = invalidations(botdata_db)
    results = await asyncio.gather(
        invalidator.add(key), invalidator.add(key), return_exceptions=True
    )
    assert [str(result) for result in results] == ["cache broke"] * 2
    monkeypatch.setattr(botdata_db.cache, "invalidate", invalidate)
    await invalidator.add(key)
    assert await gone(botdata_db, key)
