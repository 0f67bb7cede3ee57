"""The cache layer, on both backends (``db.cache``: in-process with SQLite, Redis with
PostgreSQL), plus what is specific to one backend: the in-process size bound, and Redis shared
by several caches and OS processes (those build their caches from ``support.REDIS_URL``)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

import botdata
from botdata.cache import Cache, MemoryCache, RedisCache, create_cache
from botdata.config import load_settings
from botdata.errors import ValidationError
from botdata.schemas import Schema
from botdata.testing.support import eventually
from tests.support import REDIS_URL, run_processes


class Item(Schema):
    id: int
    name: str


def counting_loader(value: Any) -> tuple[Callable[[], Awaitable[Any]], list[int]]:
    """A loader returning ``value`` and the list its calls are counted in."""
    calls: list[int] = []

    async def load() -> Any:
        calls.append(1)
        return value

    return load, calls


class ManualClock:
    """A clock for the caches that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """``db.cache`` reading a :class:`ManualClock` for this test."""
    manual = ManualClock()
    monkeypatch.setattr(botdata_db.cache, "clock", manual)
    return manual


async def elapse(cache: Cache, clock: ManualClock, seconds: float) -> None:
    """Let ``seconds`` pass for ``cache``: on its clock, and for Redis (which expires its keys
    by its own clock) in real time too. The in-process cache waits for nothing."""
    clock.now += seconds
    if isinstance(cache, RedisCache):
        await asyncio.sleep(seconds)


# Keys ------------------------------------------------------------------------------------
async def test_keys_carry_prefix_and_guild_hash_tag(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    assert cache.key("config", guild_id=42) == f"{cache.prefix}:{{g:42}}:config"
    assert cache.key("sessions", "abc") == f"{cache.prefix}:sessions:abc"
    one, two = cache.key("config", guild_id=42), cache.key("xp", "board", guild_id=42)
    assert key_slot(one.encode()) == key_slot(two.encode()) == key_slot(b"g:42")
    # Another guild's keys are placed by their own tag.
    assert key_slot(cache.key("config", guild_id=43).encode()) == key_slot(b"g:43")


# JSON values -----------------------------------------------------------------------------
async def test_json_set_get_delete(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    a, b = cache.key("a"), cache.key("b", guild_id=1)
    assert await cache.get_json(a) is None
    await cache.set_json(a, {"n": 1, "list": [1, "x", None], "nested": {"ok": True}})
    await cache.set_json(b, [1, 2])
    assert await cache.get_json(a) == {"n": 1, "list": [1, "x", None], "nested": {"ok": True}}
    await cache.set_json(a, "replaced")
    assert await cache.get_json(a) == "replaced"
    await cache.delete(a, b, cache.key("never-set"))
    assert await cache.get_json(a) is None
    assert await cache.get_json(b) is None


async def test_json_returns_copies_and_accepts_models(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("copy")
    value = {"items": [1]}
    await cache.set_json(key, value)
    value["items"].append(2)
    got = await cache.get_json(key)
    assert got == {"items": [1]}
    got["items"].append(3)
    assert await cache.get_json(key) == {"items": [1]}
    await cache.set_json(key, Item(id=1, name="x"))
    assert await cache.get_json(key) == {"id": 1, "name": "x"}


async def test_json_ttl_expires(botdata_db: botdata.Database, clock: ManualClock) -> None:
    cache = botdata_db.cache
    short, forever = cache.key("short"), cache.key("forever")
    await cache.set_json(short, 1, ttl=0.2)
    await cache.set_json(forever, 2)
    assert await cache.get_json(short) == 1
    await elapse(cache, clock, 0.21)
    assert await cache.get_json(short) is None
    assert await cache.get_json(forever) == 2


async def test_bad_ttls_are_refused(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("bad")
    with pytest.raises(ValidationError):
        await cache.set_json(key, 1, ttl=0)
    with pytest.raises(ValidationError):
        await cache.set_if_absent(key, "1", ttl=-1)
    with pytest.raises(ValidationError):
        await cache.check_rate_limit(key, 5, window=0)
    with pytest.raises(ValidationError):
        await cache.zadd(key, {"m": 1}, ttl=0)
    assert await cache.get_json(key) is None
    assert await cache.zrevrange(key, 0, -1) == []


# Set if absent ---------------------------------------------------------------------------
async def test_set_if_absent_until_ttl(botdata_db: botdata.Database, clock: ManualClock) -> None:
    cache = botdata_db.cache
    key = cache.key("cooldown", 7, guild_id=1)
    assert await cache.set_if_absent(key, "1", ttl=0.2) is True
    assert await cache.set_if_absent(key, "2", ttl=0.2) is False
    await elapse(cache, clock, 0.21)
    assert await cache.set_if_absent(key, "3", ttl=5) is True
    await cache.delete(key)
    assert await cache.set_if_absent(key, "4", ttl=5) is True


async def test_set_if_absent_one_winner_among_concurrent_callers(
    botdata_db: botdata.Database,
) -> None:
    cache = botdata_db.cache
    key = cache.key("lock")
    results = await asyncio.gather(*(cache.set_if_absent(key, str(i), 5) for i in range(100)))
    assert results.count(True) == 1


# Claims (cooldowns) ------------------------------------------------------------------------
async def test_claim_answers_the_time_left_until_it_ends(
    botdata_db: botdata.Database, clock: ManualClock
) -> None:
    cache = botdata_db.cache
    key, other = cache.key("cooldown", 8, guild_id=1), cache.key("cooldown", 9, guild_id=1)
    assert await cache.claim(key, ttl=0.5) is None
    left = await cache.claim(key, ttl=5)
    assert left is not None
    assert 0 < left <= 0.5
    assert await cache.claim(other, ttl=5) is None  # per key
    await elapse(cache, clock, 0.51)
    assert await cache.claim(key, ttl=5) is None  # ended: claimed again, for 5 s now
    assert 0.5 < (await cache.claim(key, ttl=1) or 0) <= 5
    await cache.delete(key)
    assert await cache.claim(key, ttl=5) is None
    await cache.clear()
    assert await cache.claim(key, ttl=5) is None
    with pytest.raises(ValidationError):
        await cache.claim(key, ttl=0)


async def test_claim_one_winner_among_concurrent_callers(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("cooldown", "burst")
    results = await asyncio.gather(*(cache.claim(key, 5) for _ in range(100)))
    assert results.count(None) == 1
    assert all(0 < left <= 5 for left in results if left is not None)


# Rate limits -----------------------------------------------------------------------------
async def test_rate_limit_fixed_window(botdata_db: botdata.Database, clock: ManualClock) -> None:
    cache = botdata_db.cache
    key, other = cache.key("rate", 1), cache.key("rate", 2)
    assert [await cache.check_rate_limit(key, 3, 0.3) for _ in range(5)] == [
        False,
        False,
        False,
        True,
        True,
    ]
    assert await cache.check_rate_limit(other, 3, 0.3) is False
    await elapse(cache, clock, 0.31)
    assert await cache.check_rate_limit(key, 3, 0.3) is False


async def test_rate_limit_exact_under_concurrency(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("rate", "burst")
    over = await asyncio.gather(*(cache.check_rate_limit(key, 50, 30) for _ in range(200)))
    assert over.count(False) == 50
    assert over.count(True) == 150


# Sorted sets -----------------------------------------------------------------------------
async def test_sorted_set_operations(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("xp", guild_id=9)
    assert await cache.zrevrange(key, 0, -1) == []
    assert await cache.zrevrank(key, "1") is None
    await cache.zadd(key, {"1": 10, "2": 30, "3": 20})
    assert await cache.zincrby(key, "1", 25) == 35.0
    assert await cache.zincrby(key, "4", 5) == 5.0  # a new member starts from 0
    assert await cache.zrevrange(key, 0, -1) == [("1", 35.0), ("2", 30.0), ("3", 20.0), ("4", 5.0)]
    assert await cache.zrevrange(key, 1, 2) == [("2", 30.0), ("3", 20.0)]
    assert await cache.zrevrange(key, -2, -1) == [("3", 20.0), ("4", 5.0)]
    assert await cache.zrevrange(key, 5, 10) == []
    assert [await cache.zrevrank(key, m) for m in ("1", "2", "3", "4", "5")] == [0, 1, 2, 3, None]
    await cache.zadd(key, {"3": 30})  # a tie with "2": reverse member order, as in Redis
    assert await cache.zrevrange(key, 1, 2) == [("3", 30.0), ("2", 30.0)]
    assert await cache.zrevrank(key, "2") == 2
    await cache.zrem(key, "1", "missing")
    assert await cache.zrevrange(key, 0, 0) == [("3", 30.0)]
    assert await cache.zrevrank(key, "1") is None


async def test_sorted_set_higher_only_keeps_the_highest(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("totals", guild_id=9)
    await cache.zadd(key, {"a": 10, "b": 10})
    await cache.zadd(key, {"a": 5, "b": 20, "c": 1}, higher_only=True)
    assert await cache.zrevrange(key, 0, -1) == [("b", 20.0), ("a", 10.0), ("c", 1.0)]
    await cache.zadd(key, {"a": 5})  # without it, any score is set
    assert await cache.zrevrange(key, 0, -1) == [("b", 20.0), ("a", 5.0), ("c", 1.0)]


async def test_sorted_set_ttl(botdata_db: botdata.Database, clock: ManualClock) -> None:
    cache = botdata_db.cache
    key = cache.key("board")
    await cache.zadd(key, {"a": 1}, ttl=0.2)
    assert await cache.zrevrange(key, 0, -1) == [("a", 1.0)]
    await elapse(cache, clock, 0.21)
    assert await cache.zrevrange(key, 0, -1) == []


async def test_sorted_set_writes_only_to_an_existing_set(
    botdata_db: botdata.Database, clock: ManualClock
) -> None:
    cache = botdata_db.cache
    key = cache.key("ranks", guild_id=9)
    await cache.zadd(key, {"a": 5}, higher_only=True, only_existing=True)
    await cache.zadd(key, {"a": 5}, ttl=60, only_existing=True)
    assert await cache.zrevrange(key, 0, -1) == []  # no set was created
    await cache.zadd(key, {"a": 10, "b": 10}, ttl=0.3)
    await cache.zadd(key, {"a": 5, "b": 20, "c": 1}, higher_only=True, only_existing=True)
    assert await cache.zrevrange(key, 0, -1) == [("b", 20.0), ("a", 10.0), ("c", 1.0)]
    await cache.zadd(key, {"a": 5}, only_existing=True)  # without higher_only: overwrites
    assert await cache.zrevrange(key, 0, -1) == [("b", 20.0), ("a", 5.0), ("c", 1.0)]
    # The set keeps its TTL (or takes a new one); writes after it expired create nothing.
    await elapse(cache, clock, 0.31)
    await cache.zadd(key, {"a": 50}, only_existing=True)
    assert await cache.zrevrange(key, 0, -1) == []
    # Many members (written in parts) and a TTL.
    await cache.zadd(key, {"seed": 0})
    many = {str(i): float(i) for i in range(2500)}
    await cache.zadd(key, many, ttl=0.3, higher_only=True, only_existing=True)
    assert await cache.zrevrank(key, "0") == 2500
    assert await cache.zrevrange(key, 0, 0) == [("2499", 2499.0)]
    await elapse(cache, clock, 0.31)
    assert await cache.zrevrange(key, 0, -1) == []


async def test_sorted_set_guarded_writes_stop_once_the_set_is_not_theirs(
    botdata_db: botdata.Database,
) -> None:
    """A writer that marked the set (member "marker" with its own score) writes only while
    that mark is there: not after the set was deleted, nor into a set another writer marked."""
    cache = botdata_db.cache
    key = cache.key("ranks", guild_id=10)
    mine, theirs = ("marker", -1.0 - 2**39), ("marker", -2.0)
    await cache.zadd(key, {"a": 1}, guard=mine)
    assert await cache.zrevrange(key, 0, -1) == []  # no set was created
    await cache.zadd(key, dict([mine]), ttl=60)
    await cache.zadd(key, {"a": 1, "b": 2}, higher_only=True, guard=mine)
    many = {str(i): float(i) for i in range(2500)}  # written in parts, each guarded
    await cache.zadd(key, many, higher_only=True, guard=mine)
    assert await cache.zrevrank(key, "0") == 2501
    await cache.zadd(key, {"marker": 1e6}, guard=mine)  # the last guarded write moves it
    await cache.zadd(key, {"c": 3}, guard=mine)
    assert await cache.zrevrange(key, 0, 0) == [("marker", 1e6)]
    assert await cache.zrevrank(key, "c") is None
    await cache.delete(key)
    await cache.zadd(key, dict([theirs]), ttl=60)  # another writer's set
    await cache.zadd(key, {"a": 1}, guard=mine)
    await cache.zadd(key, many, guard=mine)
    assert await cache.zrevrange(key, 0, -1) == [theirs]


# Pub/sub ---------------------------------------------------------------------------------
async def test_publish_reaches_subscribers_of_the_channel(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    channel = f"news-{uuid.uuid4().hex[:6]}"
    first: list[str] = []
    second: list[str] = []
    elsewhere: list[str] = []

    async def on_first(message: str) -> None:
        first.append(message)

    async def on_second(message: str) -> None:
        second.append(message)

    async def on_elsewhere(message: str) -> None:
        elsewhere.append(message)

    await cache.subscribe(channel, on_first)
    await cache.subscribe(channel, on_second)
    await cache.subscribe(channel + "-other", on_elsewhere)
    await cache.publish(channel, "hello")
    await cache.publish(channel, "again")
    assert await eventually(lambda: len(first) == 2 and len(second) == 2)
    assert first == second == ["hello", "again"]
    assert elsewhere == []


async def test_failing_handler_is_logged_and_others_still_run(
    botdata_db: botdata.Database, caplog: pytest.LogCaptureFixture
) -> None:
    cache = botdata_db.cache
    channel = f"broken-{uuid.uuid4().hex[:6]}"
    received: list[str] = []

    async def broken(message: str) -> None:
        raise RuntimeError("handler bug")

    async def fine(message: str) -> None:
        received.append(message)

    await cache.subscribe(channel, broken)
    await cache.subscribe(channel, fine)
    await cache.publish(channel, "x")
    assert await eventually(lambda: received == ["x"])
    assert await eventually(
        lambda: any(r.exc_info and "handler bug" in str(r.exc_info[1]) for r in caplog.records)
    )


# get_or_load, the hot layer, invalidation --------------------------------------------------
async def test_get_or_load_caches_the_loaded_value(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("loaded")
    load, calls = counting_loader({"v": 1})
    assert await cache.get_or_load(key, load, ttl=10) == {"v": 1}
    assert await cache.get_or_load(key, load, ttl=10) == {"v": 1}
    assert len(calls) == 1
    assert await cache.get_json(key) == {"v": 1}
    assert cache.hot_get(key) is None  # not asked to be hot


async def test_get_or_load_caches_none(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("nothing")
    load, calls = counting_loader(None)
    assert await cache.get_or_load(key, load, ttl=10) is None
    assert await cache.get_or_load(key, load, ttl=10) is None
    assert len(calls) == 1


async def test_get_or_load_rebuilds_models(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    one, many = cache.key("item"), cache.key("items")
    load_one, _ = counting_loader(Item(id=1, name="a"))
    load_many, _ = counting_loader([Item(id=1, name="a"), Item(id=2, name="b")])
    await cache.get_or_load(one, load_one, ttl=10, model=Item)
    await cache.get_or_load(many, load_many, ttl=10, model=Item)
    never, calls = counting_loader(None)
    assert await cache.get_or_load(one, never, ttl=10, model=Item) == Item(id=1, name="a")
    rebuilt = await cache.get_or_load(many, never, ttl=10, model=Item)
    assert rebuilt == [Item(id=1, name="a"), Item(id=2, name="b")]
    assert all(isinstance(item, Item) for item in rebuilt)
    assert calls == []


async def test_get_or_load_ttl_expires(botdata_db: botdata.Database, clock: ManualClock) -> None:
    cache = botdata_db.cache
    key = cache.key("brief")
    load, calls = counting_loader(5)
    await cache.get_or_load(key, load, ttl=0.2, hot=True)
    assert cache.hot_get(key) == 5
    await elapse(cache, clock, 0.21)
    assert cache.hot_get(key) is None  # the hot copy lives no longer than ttl
    assert await cache.get_or_load(key, load, ttl=0.2, hot=True) == 5
    assert len(calls) == 2


async def test_hot_layer_serves_the_same_object(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("config", guild_id=5)
    config = Item(id=5, name="prefix!")
    load, calls = counting_loader(config)
    assert cache.hot_get(key) is None
    first = await cache.get_or_load(key, load, ttl=10, hot=True, model=Item)
    assert cache.hot_get(key) is first
    assert await cache.get_or_load(key, load, ttl=10, hot=True, model=Item) is first
    assert len(calls) == 1
    # The shared copy is there too: dropping the hot copy only costs a JSON read.
    cache._hot.clear()
    assert await cache.get_or_load(key, load, ttl=10, hot=True, model=Item) == config
    assert len(calls) == 1


async def test_loader_errors_propagate_and_cache_nothing(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key = cache.key("failing")

    async def boom() -> Any:
        raise LookupError("database said no")

    with pytest.raises(LookupError):
        await cache.get_or_load(key, boom, ttl=10, hot=True)
    assert await cache.get_json(key) is None
    assert cache.hot_get(key) is None


async def test_invalidate_drops_hot_and_shared_copies(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    key, kept = cache.key("prefix", guild_id=3), cache.key("other", guild_id=3)
    source = {"prefix": "!"}

    async def load() -> dict[str, str]:
        return dict(source)

    await cache.get_or_load(key, load, ttl=60, hot=True)
    await cache.get_or_load(kept, load, ttl=60, hot=True)
    source["prefix"] = "?"
    await cache.invalidate(key)
    assert cache.hot_get(key) is None
    assert await cache.get_json(key) is None
    assert cache.hot_get(kept) == {"prefix": "!"}
    assert await cache.get_or_load(key, load, ttl=60, hot=True) == {"prefix": "?"}
    assert cache.hot_get(key) == {"prefix": "?"}


async def test_value_loaded_during_invalidate_is_not_kept(botdata_db: botdata.Database) -> None:
    """The self-invalidation race: a load that read the old value before an invalidation
    finishes after it; its value must not be cached anywhere."""
    cache = botdata_db.cache
    key = cache.key("race", guild_id=4)
    source = {"v": "old"}
    calls: list[int] = []

    async def slow_load() -> dict[str, str]:
        calls.append(1)
        value = dict(source)  # read "old" ...
        source["v"] = "new"  # ... then another task commits "new" and invalidates
        await cache.invalidate(key)
        return value

    assert await cache.get_or_load(key, slow_load, ttl=60, hot=True) == {"v": "old"}
    assert cache.hot_get(key) is None
    assert await cache.get_json(key) is None

    async def load() -> dict[str, str]:
        calls.append(1)
        return dict(source)

    assert await cache.get_or_load(key, load, ttl=60, hot=True) == {"v": "new"}
    assert len(calls) == 2


async def test_a_reader_finding_a_fill_under_way_loads_for_itself(
    botdata_db: botdata.Database,
) -> None:
    """A second reader of a key being filled loads it itself and stores nothing in the shared
    cache (its hot layer may keep it); the lease is never seen as a value; the first reader's
    fill lands."""
    cache = botdata_db.cache
    key = cache.key("busy", guild_id=4)
    loading, release = asyncio.Event(), asyncio.Event()

    async def slow_load() -> str:
        loading.set()
        await release.wait()
        return "first"

    first = asyncio.create_task(cache.get_or_load(key, slow_load, ttl=60))
    await loading.wait()
    second, calls = counting_loader("second")
    assert await cache.get_json(key) is None  # the lease is not a value
    assert await cache.get_or_load(key, second, ttl=60) == "second"
    assert await cache.get_json(key) is None
    release.set()
    assert await first == "first"
    assert await cache.get_json(key) == "first"
    assert await cache.get_or_load(key, second, ttl=60) == "first"
    assert len(calls) == 1


async def test_invalidate_guild_drops_the_guilds_copies_only(botdata_db: botdata.Database) -> None:
    """Every cached copy of one guild's rows goes (values, hot entries, sorted sets, keys per
    member), whatever their names; other guilds' keys, untagged keys, and the guild's claims,
    locks and set_json values stay."""
    cache = botdata_db.cache
    guild, other = 12, 120  # 120's keys start like 12's but for the closing brace
    load, calls = counting_loader({"v": 1})
    copies = [cache.key("config", guild_id=guild), cache.key("cases", 5, guild_id=guild)]
    kept = [cache.key("config", guild_id=other), cache.key("config")]
    for key in copies + kept:
        await cache.get_or_load(key, load, ttl=60, hot=True)
    board, other_board = cache.key("rank", guild_id=guild), cache.key("rank", guild_id=other)
    await cache.zadd(board, {"m": 1}, ttl=60)
    await cache.zadd(other_board, {"m": 1})
    lock, value = cache.key("lock", guild_id=guild), cache.key("value", guild_id=guild)
    await cache.set_if_absent(lock, "1", 60)
    await cache.set_json(value, 7)
    assert await cache.claim(cache.key("cooldown", 5, guild_id=guild), 60) is None

    await cache.invalidate_guild(guild)

    for key in copies:
        assert cache.hot_get(key) is None
        assert await cache.get_json(key) is None
    assert await cache.zrevrange(board, 0, -1) == []
    for key in kept:
        assert cache.hot_get(key) == {"v": 1}
        assert await cache.get_json(key) == {"v": 1}
    assert await cache.zrevrange(other_board, 0, -1) == [("m", 1.0)]
    assert await cache.set_if_absent(lock, "2", 60) is False
    assert await cache.get_json(value) == 7
    assert await cache.claim(cache.key("cooldown", 5, guild_id=guild), 60) is not None
    # Reloaded from the source, cached again, and dropped again by the next call.
    assert await cache.get_or_load(copies[0], load, ttl=60) == {"v": 1}
    assert len(calls) == len(copies + kept) + 1
    await cache.invalidate_guild(guild)
    assert await cache.get_json(copies[0]) is None
    await cache.invalidate_guild(guild)  # nothing cached: harmless


async def test_fill_in_flight_during_invalidate_guild_is_not_stored(
    botdata_db: botdata.Database,
) -> None:
    """A value read before the guild's rows changed is not cached after invalidate_guild."""
    cache = botdata_db.cache
    key = cache.key("config", guild_id=13)

    async def slow_load() -> str:
        await cache.invalidate_guild(13)  # the rows change while this load runs
        return "old"

    assert await cache.get_or_load(key, slow_load, ttl=60, hot=True) == "old"
    assert await cache.get_json(key) is None
    assert cache.hot_get(key) is None


@pytest.mark.parametrize("botdata_backend", ["postgres"], indirect=True, scope="session")
async def test_concurrent_invalidations_share_round_trips(
    botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers of invalidate do not group their keys themselves: the Redis cache sends those
    given while one invalidation is in flight together; every key is gone when its call
    returns. (The in-process cache has no round trip to save: it drops keys at once.)"""
    cache = botdata_db.cache
    keys = [cache.key("inv", i, guild_id=7) for i in range(20)]
    for i, key in enumerate(keys):
        load, _ = counting_loader(i)
        await cache.get_or_load(key, load, 60, hot=True)
    batches: list[list[str]] = []
    forget = cache._forget

    async def recording(batch: Collection[str]) -> None:
        batches.append(list(batch))
        await forget(batch)

    monkeypatch.setattr(cache, "_forget", recording)

    async def drop(key: str) -> bool:
        await cache.invalidate(key)
        return cache.hot_get(key) is None and await cache.get_json(key) is None

    assert await asyncio.gather(*(drop(key) for key in keys)) == [True] * len(keys)
    assert len(batches) < len(keys)
    assert sorted(key for batch in batches for key in batch) == sorted(keys)


async def test_clear_removes_everything_under_the_prefix(botdata_db: botdata.Database) -> None:
    cache = botdata_db.cache
    plain, tagged, board = cache.key("a"), cache.key("b", guild_id=8), cache.key("z", guild_id=8)
    await cache.set_json(plain, 1)
    await cache.set_json(tagged, 2)
    await cache.zadd(board, {"m": 1})
    await cache.set_if_absent(cache.key("cool"), "1", 60)
    load, _ = counting_loader(3)
    hot = cache.key("hot", guild_id=8)
    await cache.get_or_load(hot, load, ttl=60, hot=True)
    await cache.clear()
    assert await cache.get_json(plain) is None
    assert await cache.get_json(tagged) is None
    assert await cache.get_json(hot) is None
    assert await cache.zrevrange(board, 0, -1) == []
    assert cache.hot_get(hot) is None
    assert await cache.set_if_absent(cache.key("cool"), "1", 60) is True


# In-process backend ----------------------------------------------------------------------
async def test_memory_cache_is_bounded_lru() -> None:
    cache = MemoryCache(load_settings(CACHE_MAX_ENTRIES=3, REDIS_URL=None))
    for name in ("a", "b", "c"):
        await cache.set_json(cache.key(name), name)
    assert await cache.get_json(cache.key("a")) == "a"  # "a" is now the most recent
    await cache.set_json(cache.key("d"), "d")  # evicts "b", the least recently used
    assert await cache.get_json(cache.key("b")) is None
    assert [await cache.get_json(cache.key(n)) for n in ("a", "c", "d")] == ["a", "c", "d"]
    for i in range(10):
        await cache.zadd(cache.key("z", i), {"m": i})
    assert len(cache._store) == 3


async def test_memory_hot_layer_is_bounded() -> None:
    cache = MemoryCache(load_settings(CACHE_MAX_ENTRIES=2, REDIS_URL=None))
    for name in ("a", "b", "c"):
        load, _ = counting_loader(name)
        await cache.get_or_load(cache.key(name), load, ttl=60, hot=True)
    assert len(cache._hot) == 2
    assert cache.hot_get(cache.key("a")) is None
    assert cache.hot_get(cache.key("c")) == "c"


async def test_hot_layer_ttl_is_capped() -> None:
    clock = ManualClock()
    cache = MemoryCache(load_settings(HOT_CACHE_TTL=0.2, REDIS_URL=None), clock)
    key = cache.key("capped")
    load, calls = counting_loader("v")
    await cache.get_or_load(key, load, ttl=60, hot=True)
    assert cache.hot_get(key) == "v"
    clock.now += 0.2
    assert cache.hot_get(key) is None
    assert await cache.get_or_load(key, load, ttl=60, hot=True) == "v"  # still in the store
    assert len(calls) == 1


async def test_following_the_database_drops_copies_only_when_it_changed() -> None:
    """``follow``: when the change counter moves (or cannot be read), cached values, sorted
    sets and the hot layer go (a fill under way does not land); claims, rate-limit counters and
    locks stay; while it does not move nothing is dropped. ``close`` stops it."""
    cache = MemoryCache(load_settings(REDIS_URL=None))
    version = [1]
    checks: list[int] = []

    async def read_version() -> int:
        checks.append(version[0])
        if version[0] == 0:
            raise RuntimeError("database gone")
        return version[0]

    value, board = cache.key("config", guild_id=1), cache.key("board", guild_id=1)
    claim, lock, rate = cache.key("claim"), cache.key("lock"), cache.key("rate")
    tasks_before = asyncio.all_tasks()
    cache.follow(read_version, interval=0.05)
    assert await eventually(lambda: len(checks) >= 1)
    load, calls = counting_loader("v")
    first = await cache.get_or_load(value, load, ttl=60, hot=True)
    await cache.zadd(board, {"m": 1})
    assert await cache.claim(claim, 60) is None
    assert await cache.set_if_absent(lock, "1", 60) is True
    assert await cache.check_rate_limit(rate, 1, 60) is False
    loading, release = asyncio.Event(), asyncio.Event()

    async def slow_load() -> str:
        loading.set()
        await release.wait()
        return "old"

    filling = asyncio.create_task(cache.get_or_load(cache.key("slow"), slow_load, ttl=60))
    await loading.wait()
    await asyncio.sleep(0.2)  # several checks, no change
    assert cache.hot_get(value) is first
    version[0] = 2
    assert await eventually(lambda: cache.hot_get(value) is None)
    release.set()
    assert await filling == "old"
    assert await cache.get_json(cache.key("slow")) is None
    assert await cache.get_json(value) is None
    assert await cache.zrevrange(board, 0, -1) == []
    assert await cache.claim(claim, 60) is not None
    assert await cache.set_if_absent(lock, "1", 60) is False
    assert await cache.check_rate_limit(rate, 1, 60) is True
    assert await cache.get_or_load(value, load, ttl=60, hot=True) == "v"
    assert len(calls) == 2
    version[0] = 0  # unreadable: taken as changed
    assert await eventually(lambda: cache.hot_get(value) is None)
    await cache.close()
    assert asyncio.all_tasks() - tasks_before == set()
    seen = len(checks)
    await asyncio.sleep(0.15)
    assert len(checks) == seen


async def test_no_redis_url_gives_the_in_process_cache() -> None:
    cache = await create_cache(load_settings(REDIS_URL=None))
    assert isinstance(cache, MemoryCache)
    await cache.close()


# Redis shared by several caches and processes ----------------------------------------------
@pytest.fixture
async def redis_caches(
    botdata_services: None,
) -> AsyncIterator[Callable[..., Awaitable[RedisCache]]]:
    """Make Redis caches sharing one fresh prefix on ``support.REDIS_URL``; all cleaned up."""
    prefix = f"botdata-test-{uuid.uuid4().hex[:8]}"
    made: list[Cache] = []

    async def make(**settings: Any) -> RedisCache:
        # As the session's handle: on 2 busy cores a slow call must not look like an outage
        # (tests of timeouts pass their own).
        settings.setdefault("REDIS_TIMEOUT", 1.0)
        settings.setdefault("REDIS_URL", REDIS_URL)
        cache = await create_cache(load_settings(CACHE_PREFIX=prefix, **settings))
        assert isinstance(cache, RedisCache)
        made.append(cache)
        return cache

    yield make
    if made:
        await made[0].clear()
    for cache in made:
        await cache.close()


async def test_invalidation_reaches_other_caches_within_a_second(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    here, there = await redis_caches(), await redis_caches()
    key = here.key("config", guild_id=11)
    source = {"prefix": "!"}

    async def load() -> dict[str, str]:
        return dict(source)

    await here.get_or_load(key, load, ttl=60, hot=True)
    await there.get_or_load(key, load, ttl=60, hot=True)
    assert there.hot_get(key) == {"prefix": "!"}
    source["prefix"] = "?"
    await here.invalidate(key)
    assert await eventually(lambda: there.hot_get(key) is None, within=1.0)
    assert await there.get_or_load(key, load, ttl=60, hot=True) == {"prefix": "?"}


async def test_invalidate_guild_reaches_other_caches_within_a_second(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    here, there = await redis_caches(), await redis_caches()
    key, kept = here.key("config", guild_id=11), here.key("config", guild_id=110)
    load, _ = counting_loader("!")
    for cache in (here, there):
        await cache.get_or_load(key, load, ttl=60, hot=True)
        await cache.get_or_load(kept, load, ttl=60, hot=True)
    await here.invalidate_guild(11)
    assert await eventually(lambda: there.hot_get(key) is None, within=1.0)
    assert there.hot_get(kept) == "!"
    assert await there.get_json(key) is None


async def test_invalidate_guild_of_many_keys_takes_no_scan(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    """A guild's keys are found through its index, in batches: more keys than one batch go,
    and the keyspace is not walked: the cache runs as a Redis user that may not SCAN (a SCAN
    would fail, the invalidation would be owed and the keys would stay)."""
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    user = f"botdata-noscan-{uuid.uuid4().hex[:8]}"
    await client.acl_setuser(
        user, enabled=True, nopass=True, keys=["*"], channels=["*"], commands=["+@all", "-scan"]
    )
    try:
        await redis_caches()  # the first cache, which cleans up: allowed to SCAN
        no_scan = REDIS_URL.replace("redis://", f"redis://{user}@", 1)
        as_user = redis.asyncio.Redis.from_url(no_scan)
        with pytest.raises(redis.exceptions.NoPermissionError):
            await as_user.scan(0)
        await as_user.aclose()
        cache = await redis_caches(REDIS_URL=no_scan)
        keys = [cache.key("cases", member, guild_id=21) for member in range(2500)]
        load, _ = counting_loader(1)
        await asyncio.gather(*(cache.get_or_load(key, load, ttl=60) for key in keys))
        assert await client.exists(*keys) == len(keys)
        await cache.invalidate_guild(21)
        assert await client.exists(*keys) == 0
        await cache.close()
    finally:
        await client.acl_deluser(user)
        await client.aclose()


async def test_invalidation_from_another_process(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    cache = await redis_caches()
    key = cache.key("perm", guild_id=12)
    load, _ = counting_loader([1, 2])
    await cache.get_or_load(key, load, ttl=60, hot=True)
    assert cache.hot_get(key) == [1, 2]
    code = f"""
        import asyncio
        from botdata.cache import create_cache
        from botdata.config import load_settings

        async def main():
            cache = await create_cache(load_settings(REDIS_URL={REDIS_URL!r},
                                                     CACHE_PREFIX={cache.prefix!r}))
            await cache.invalidate({key!r})
            await cache.close()

        asyncio.run(main())
    """
    await asyncio.to_thread(run_processes, code, 1)
    assert await eventually(lambda: cache.hot_get(key) is None, within=1.0)
    assert await cache.get_json(key) is None


async def test_a_fill_racing_another_process_invalidation_is_not_stored(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    """Another process updates the value and invalidates it while this cache loads it, and
    its announcement has not reached this cache yet (here: it never does, the invalidating
    cache announces on another prefix's channel). Only the lease can stop the stale fill of
    the shared cache (a hot copy would go when the announcement arrives)."""
    here = await redis_caches()
    elsewhere = await create_cache(
        load_settings(REDIS_URL=REDIS_URL, CACHE_PREFIX=here.prefix + "-unheard")
    )
    key = here.key("config", guild_id=13)
    source = {"prefix": "!"}

    async def racing_load() -> dict[str, str]:
        value = dict(source)
        source["prefix"] = "?"
        await elsewhere.invalidate(key)  # deletes this very key
        return value

    async def load() -> dict[str, str]:
        return dict(source)

    try:
        assert await here.get_or_load(key, racing_load, ttl=60) == {"prefix": "!"}
        assert await here.get_json(key) is None
        assert await here.get_or_load(key, load, ttl=60, hot=True) == {"prefix": "?"}
        assert await here.get_json(key) == {"prefix": "?"}
    finally:
        await elsewhere.close()


async def test_claims_are_shared_and_remembered(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    """Another cache sees a claim as taken with its time left, and so remembers it: later
    claims of that key cost no round trip (a key deleted behind its back stays taken for it
    until the claim ends, while a cache that never saw it claims it). An invalidation or a
    clear, which reach every cache, forget it."""
    here, there = await redis_caches(), await redis_caches()
    key, marker = here.key("cooldown", 5, guild_id=3), here.key("marker")
    load, _ = counting_loader(1)

    async def announced(announce: Callable[[], Awaitable[None]]) -> bool:
        """Run ``announce`` and wait until both caches got it (it drops ``marker``)."""
        for cache in (here, there):
            await cache.get_or_load(marker, load, ttl=60, hot=True)
        await announce()
        return await eventually(
            lambda: here.hot_get(marker) is None and there.hot_get(marker) is None
        )

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        assert await here.claim(key, 30) is None
        left = await there.claim(key, 30)
        assert left is not None
        assert 25 < left <= 30
        client.delete(key)
        assert await here.claim(key, 30) is not None
        assert await there.claim(key, 30) is not None
        assert client.exists(key) == 0  # neither asked Redis
        fresh = await redis_caches()
        assert await fresh.claim(key, 30) is None
        assert client.exists(key) == 1
        assert await announced(lambda: fresh.invalidate(key, marker))
        assert await here.claim(key, 30) is None
        assert await there.claim(key, 30) is not None
        assert await announced(fresh.clear)
        assert await there.claim(key, 30) is None
    finally:
        client.close()


async def test_scripts_are_loaded_again_when_redis_lost_them(
    redis_caches: Callable[..., Awaitable[RedisCache]], caplog: pytest.LogCaptureFixture
) -> None:
    """After a restart (here: SCRIPT FLUSH) Redis no longer knows the cache's scripts: they are
    loaded again, the calls still answer, and nothing is taken for an outage."""
    cache = await redis_caches()
    caplog.set_level(logging.WARNING, logger="botdata.cache")
    board = cache.key("board", guild_id=4)
    await cache.zadd(board, {"seed": 0}, ttl=60)
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        for round_ in range(2):
            client.script_flush()
            claims = await asyncio.gather(
                *(cache.claim(cache.key("cooldown", round_, i), 5) for i in range(3))
            )
            assert claims == [None, None, None]
            await cache.zadd(board, {"a": round_ + 1}, only_existing=True)
            client.script_flush()
            await cache.zadd(board, {str(i): i for i in range(1500)}, only_existing=True)
            assert await cache.zrevrange(board, 0, 0) == [("1499", 1499.0)]
            assert await cache.zrevrank(board, "a") is not None
    finally:
        client.close()
    assert [r.getMessage() for r in caplog.records if r.name == "botdata.cache"] == []


async def test_rate_limit_exact_across_processes(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    cache = await redis_caches()
    key = cache.key("rate", "shared")
    # A generous REDIS_TIMEOUT: on a busy machine a slow call would fall back to the
    # per-process limiter, and this test is about Redis's count.
    code = f"""
        import asyncio
        from botdata.cache import create_cache
        from botdata.config import load_settings

        async def main():
            cache = await create_cache(load_settings(REDIS_URL={REDIS_URL!r}, REDIS_TIMEOUT=5,
                                                     CACHE_PREFIX={cache.prefix!r}))
            over = await asyncio.gather(
                *(cache.check_rate_limit({key!r}, 60, 60) for _ in range(50)))
            await cache.close()
            print(over.count(False))

        asyncio.run(main())
    """
    outputs = await asyncio.to_thread(run_processes, code, 4)
    assert sum(int(out) for out in outputs) == 60
    assert await cache.check_rate_limit(key, 60, 60) is True


async def test_clear_leaves_other_prefixes_alone(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    mine = await redis_caches()
    other = await create_cache(
        load_settings(REDIS_URL=REDIS_URL, CACHE_PREFIX=mine.prefix + "-other")
    )
    try:
        await mine.set_json(mine.key("x", guild_id=1), 1)
        await other.set_json(other.key("x", guild_id=1), 2)
        await mine.clear()
        assert await mine.get_json(mine.key("x", guild_id=1)) is None
        assert await other.get_json(other.key("x", guild_id=1)) == 2
    finally:
        await other.clear()
        await other.close()


async def test_clear_empties_the_hot_layer_of_other_caches(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    here, there = await redis_caches(), await redis_caches()
    key = there.key("hot")
    load, _ = counting_loader(1)
    await there.get_or_load(key, load, ttl=60, hot=True)
    await here.clear()
    assert await eventually(lambda: there.hot_get(key) is None, within=1.0)


async def test_bulk_write_is_not_taken_for_an_outage(
    redis_caches: Callable[..., Awaitable[RedisCache]], caplog: pytest.LogCaptureFixture
) -> None:
    """A 100,000-member ZADD takes Redis longer than a short REDIS_TIMEOUT: it is sent in
    parts answered one by one, within a bound that grows with its size, so it is written and
    no outage is declared."""
    writer, reader = await redis_caches(REDIS_TIMEOUT=0.05), await redis_caches()
    key = writer.key("big", guild_id=9)
    caplog.set_level(logging.WARNING, logger="botdata.cache")
    await writer.zadd(key, {str(10**17 + i): i for i in range(100_000)})
    assert [r.getMessage() for r in caplog.records if r.name == "botdata.cache"] == []
    assert await reader.zrevrank(key, str(10**17)) == 99_999
    assert await reader.zrevrange(key, 0, 0) == [(str(10**17 + 99_999), 99_999.0)]


async def test_a_burst_of_calls_is_not_taken_for_an_outage(
    redis_caches: Callable[..., Awaitable[RedisCache]], caplog: pytest.LogCaptureFixture
) -> None:
    """64 tasks calling one after the other (a bot's message handlers) share 16 connections:
    they wait their turn, first come first served, so none times out for want of a
    connection; no outage is declared and the hot layer stays on."""
    cache = await redis_caches(REDIS_TIMEOUT=0.25)
    key, hot = cache.key("burst", guild_id=10), cache.key("hot", guild_id=10)
    load, _ = counting_loader("v")
    await cache.get_or_load(hot, load, ttl=60, hot=True)
    await cache.set_json(key, 1)
    caplog.set_level(logging.WARNING, logger="botdata.cache")
    answers: list[Any] = []

    async def handler() -> None:
        for _ in range(150):
            answers.append(await cache.get_json(key))

    await asyncio.gather(*(handler() for _ in range(64)))
    assert answers.count(1) > 0
    assert [r.getMessage() for r in caplog.records if r.name == "botdata.cache"] == []
    assert cache.hot_get(hot) == "v"


async def test_close_leaves_no_task_behind(
    redis_caches: Callable[..., Awaitable[RedisCache]],
) -> None:
    before = asyncio.all_tasks()
    cache = await redis_caches()
    received: list[str] = []

    async def handler(message: str) -> None:
        received.append(message)

    await cache.subscribe("closing", handler)
    await cache.publish("closing", "m")
    assert await eventually(lambda: received == ["m"])
    assert asyncio.all_tasks() - before  # the subscriber runs
    await cache.close()
    assert asyncio.all_tasks() - before == set()
    await cache.close()  # twice is harmless
