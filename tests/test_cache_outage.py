"""The Redis cache when Redis is not there, hangs, stops mid-run or pauses.

Every test runs its own "Redis": a refused port, a local TCP server that accepts and never
answers, or a ``redis-server`` process started (and killed) here; the shared Redis is not
touched. Each cache call must return well within a second (a hang guard, not a benchmark).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from botdata.cache import RedisCache, create_cache
from botdata.config import load_settings
from botdata.testing.support import eventually
from tests.test_cache import ManualClock

T = TypeVar("T")

#: What "returns fast" means here; REDIS_TIMEOUT is 0.25 s.
FAST = 1.0


async def quick(call: Awaitable[T]) -> T:
    """``await call``, failing the test if it takes FAST seconds or more."""
    start = time.monotonic()
    result = await asyncio.wait_for(call, timeout=10)
    elapsed = time.monotonic() - start
    assert elapsed < FAST, f"a cache call took {elapsed:.2f} s"
    return result


def outage_logs(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "botdata.cache" and r.levelno == level]


async def redis_cache(url: str, prefix: str | None = None) -> RedisCache:
    cache = await quick(
        create_cache(
            load_settings(REDIS_URL=url, CACHE_PREFIX=prefix or f"outage-{uuid.uuid4().hex[:8]}")
        )
    )
    assert isinstance(cache, RedisCache)
    return cache


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A ``redis-server`` process of our own on a fixed port, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
            finally:
                client.close()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=3, socket_connect_timeout=3)


@pytest.fixture
def redis_server(botdata_services: None, tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: the Redis restart tests need it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: services are required)", pytrace=False)
        pytest.skip(message)
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.resume()  # a failed test may have left it paused
    server.stop()


@pytest.fixture(params=["refused", "blackholed"])
async def dead_redis(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The URL of a Redis that refuses connections, or of a TCP server that accepts them and
    never answers."""
    if request.param == "refused":
        yield f"redis://127.0.0.1:{free_port()}/0"
        return
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    server.close()
    for writer in writers:
        writer.close()
    await server.wait_closed()


async def exercise(cache: RedisCache, seconds: float) -> tuple[list[int], int]:
    """Call every operation repeatedly for ``seconds``, each call checked with :func:`quick`.

    Returns the loader calls of get_or_load and how many rounds ran.
    """
    loads: list[int] = []

    async def loader() -> dict[str, int]:
        loads.append(1)
        return {"v": 1}

    async def ignore(message: str) -> None:
        pass

    key = cache.key("config", guild_id=1)
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        await quick(cache.set_json(key, {"v": 2}, ttl=60))
        assert await quick(cache.get_json(key)) is None
        assert await quick(cache.get_or_load(key, loader, 60, hot=True)) == {"v": 1}
        assert cache.hot_get(key) is None
        await quick(cache.delete(key))
        await quick(cache.invalidate(key))
        await quick(cache.zadd(cache.key("board"), {"a": 1}))
        assert await quick(cache.zincrby(cache.key("board"), "a", 1)) is None
        assert await quick(cache.zrevrank(cache.key("board"), "a")) is None
        assert await quick(cache.zrevrange(cache.key("board"), 0, -1)) == []
        await quick(cache.zrem(cache.key("board"), "a"))
        await quick(cache.publish("events", "lost"))
        await quick(cache.subscribe(f"events-{rounds}", ignore))
        await asyncio.sleep(0.02)
    await quick(cache.clear())
    return loads, rounds


async def check_fallbacks(cache: RedisCache) -> None:
    """Cooldowns and rate limits keep working in-process (their TTLs on the cache's clock)."""
    cooldown, rate = cache.key("cooldown", 1), cache.key("rate", 1)
    clock, real = ManualClock(), cache.clock
    cache.clock = clock
    try:
        assert await quick(cache.set_if_absent(cooldown, "1", 0.3)) is True
        assert await quick(cache.set_if_absent(cooldown, "1", 0.3)) is False
        assert [await quick(cache.check_rate_limit(rate, 2, 60)) for _ in range(4)] == [
            False,
            False,
            True,
            True,
        ]
        clock.now += 0.3
        assert await quick(cache.set_if_absent(cooldown, "1", 0.3)) is True
    finally:
        cache.clock = real


async def test_unreachable_redis_degrades_quietly(
    dead_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="botdata.cache")
    url = dead_redis
    cache = await redis_cache(url)
    try:
        await check_fallbacks(cache)
        # Longer than the retry interval: Redis is tried again, and still logged only once.
        loads, rounds = await exercise(cache, seconds=1.6)
        assert len(loads) == rounds  # nothing cached: the loader serves every read
        # Redis is tried again about once a second, not on every call: most rounds cost nothing.
        assert rounds >= 10
        assert len(outage_logs(caplog, logging.WARNING)) == 1
        assert url in outage_logs(caplog, logging.WARNING)[0].getMessage()
        assert outage_logs(caplog, logging.INFO) == []
    finally:
        await quick(cache.close())


async def test_redis_stopping_and_coming_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="botdata.cache")
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    here, there = (
        await redis_cache(redis_server.url, prefix),
        await redis_cache(redis_server.url, prefix),
    )
    key = here.key("config", guild_id=5)
    source = {"prefix": "!"}
    loads: list[int] = []

    async def load() -> dict[str, str]:
        loads.append(1)
        return dict(source)

    events: list[str] = []

    async def on_event(message: str) -> None:
        events.append(message)

    try:
        await there.get_or_load(key, load, 60, hot=True)
        assert there.hot_get(key) == {"prefix": "!"}
        await here.subscribe("events", on_event)

        redis_server.stop()
        assert await eventually(lambda: there.hot_get(key) is None, 2.0)
        source["prefix"] = "?"
        await check_fallbacks(here)
        loads.clear()
        for _ in range(20):
            assert await quick(there.get_or_load(key, load, 60, hot=True)) == {"prefix": "?"}
            assert await quick(here.get_json(key)) is None
        assert len(loads) == 20  # the database serves every read meanwhile
        assert len(outage_logs(caplog, logging.WARNING)) == 2  # once per cache

        redis_server.start()
        client = redis_server.client()
        after = here.key("after")

        async def written_through() -> bool:
            await here.set_json(after, 1)
            return client.get(after) == b"1"

        assert await eventually(written_through, 4.0)
        assert await eventually(lambda: len(outage_logs(caplog, logging.INFO)) == 2, 4.0)
        assert len(outage_logs(caplog, logging.WARNING)) == 2

        # The hot layer works again, and cross-process invalidation with it.
        async def hot_again() -> bool:
            await there.get_or_load(key, load, 60, hot=True)
            return there.hot_get(key) is not None

        assert await eventually(hot_again, 4.0)
        source["prefix"] = "$"
        await quick(here.invalidate(key))
        assert await eventually(lambda: there.hot_get(key) is None, 1.0)
        assert await there.get_or_load(key, load, 60, hot=True) == {"prefix": "$"}
        # The subscription made before the outage is back.
        await there.publish("events", "after the outage")
        assert await eventually(lambda: events == ["after the outage"], 1.0)
        client.close()
    finally:
        await quick(here.close())
        await quick(there.close())


async def test_paused_redis_times_out_and_catches_up(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that hangs (CLIENT PAUSE): calls time out; an invalidation made meanwhile is
    applied, and announced, once Redis answers again."""
    caplog.set_level(logging.INFO, logger="botdata.cache")
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    here, there = (
        await redis_cache(redis_server.url, prefix),
        await redis_cache(redis_server.url, prefix),
    )
    key = here.key("config", guild_id=6)
    client = redis_server.client()

    async def load() -> str:
        return "old"

    try:
        await there.get_or_load(key, load, 60, hot=True)
        assert client.get(key) == b'"old"'
        client.client_pause(1200, all=True)
        await quick(here.invalidate(key))  # times out: remembered
        assert await quick(here.get_json(key)) is None
        assert len(outage_logs(caplog, logging.WARNING)) == 1

        async def caught_up() -> bool:
            await here.get_json(here.key("probe"))
            return client.get(key) is None

        assert await eventually(caught_up, 4.0)
        assert await eventually(lambda: there.hot_get(key) is None, 1.0)
        # The delete may have been done by the command sent before the pause (Redis runs it
        # when it wakes up); the cache's own retry confirms it, and logs that Redis is back.
        assert await eventually(lambda: len(outage_logs(caplog, logging.INFO)) == 1, 3.0)
        assert len(outage_logs(caplog, logging.WARNING)) == 1
    finally:
        client.close()
        await quick(here.close())
        await quick(there.close())


async def test_one_slow_call_is_not_an_outage_but_a_long_pause_is(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A pause a bit longer than REDIS_TIMEOUT: the call caught in it gets a miss, and that is
    all (no outage, hot layers kept). A long pause: the outage is declared, once; the hot
    layer is emptied when the subscriber's health check fails; all comes back after it."""
    caplog.set_level(logging.INFO, logger="botdata.cache")
    settings = load_settings(
        REDIS_URL=redis_server.url,
        CACHE_PREFIX=f"outage-{uuid.uuid4().hex[:8]}",
        REDIS_TIMEOUT=0.5,
    )
    here, there = await create_cache(settings), await create_cache(settings)
    key, probe = here.key("config", guild_id=8), here.key("probe")
    client = redis_server.client()

    async def load() -> str:
        return "v"

    async def answers() -> bool:
        return await here.get_json(probe) == 1

    try:
        for cache in (here, there):
            await cache.get_or_load(key, load, 60, hot=True)
        assert here.hot_get(key) == there.hot_get(key) == "v"
        await here.set_json(probe, 1)

        client.client_pause(700, all=True)
        assert await quick(here.get_json(probe)) is None  # timed out: a miss
        assert await eventually(answers, 2.0)
        assert outage_logs(caplog, logging.WARNING) == []
        assert here.hot_get(key) == there.hot_get(key) == "v"
        await quick(there.close())  # its heartbeat may fail in the long pause: not under test

        client.client_pause(6000, all=True)
        assert await quick(here.get_json(probe)) is None
        assert await quick(here.get_json(probe)) is None
        assert len(outage_logs(caplog, logging.WARNING)) == 1
        assert await eventually(lambda: here.hot_get(key) is None, 6.0)
        assert await quick(here.get_or_load(key, load, 60, hot=True)) == "v"
        assert here.hot_get(key) is None  # off until the subscriber is back

        assert await eventually(answers, 8.0)
        assert await eventually(lambda: len(outage_logs(caplog, logging.INFO)) == 1, 2.0)

        async def hot_again() -> bool:
            await here.get_or_load(key, load, 60, hot=True)
            return here.hot_get(key) == "v"

        assert await eventually(hot_again, 4.0)
        assert len(outage_logs(caplog, logging.WARNING)) == 1
    finally:
        client.close()
        await quick(here.close())
        await quick(there.close())


async def fill(cache: RedisCache, guild_id: int) -> tuple[str, str, str]:
    """A value (also in the hot layer), a sorted set and a plain value, all in Redis."""
    value, board, plain = (cache.key(name, guild_id=guild_id) for name in ("v", "board", "p"))

    async def load() -> str:
        return "cached"

    await cache.get_or_load(value, load, 60, hot=True)
    await cache.zadd(board, {"member": 1.0})
    await cache.set_json(plain, 1)
    return value, board, plain


async def test_clear_while_redis_is_paused_is_owed_and_applied_before_the_next_call(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clear Redis does not get is reported (False), and applied before this cache's next
    call reaches Redis: nothing cleared is read back. The background retry is held off
    here (a long SETTLE_INTERVAL) so that only the next call can apply it."""
    monkeypatch.setattr("botdata.cache.redis_link.SETTLE_INTERVAL", 60.0)
    cache = await redis_cache(redis_server.url)
    value, board, plain = await fill(cache, 1)
    client = redis_server.client()
    try:
        assert cache.hot_get(value) == "cached"
        redis_server.pause()
        assert await quick(cache.clear()) is False
        assert cache.hot_get(value) is None
        redis_server.resume()
        probe = cache.key("probe")

        async def written_through() -> bool:
            await cache.set_json(probe, 1)
            return client.get(probe) == b"1"

        assert await eventually(written_through, 4.0)
        assert [client.exists(key) for key in (value, board, plain)] == [0, 0, 0]
        assert await cache.get_json(value) is None
        assert await cache.zrevrange(board, 0, -1) == []
    finally:
        client.close()
        await quick(cache.close())


async def test_guild_invalidation_while_redis_is_paused_is_owed_and_retried(
    redis_server: RedisServer,
) -> None:
    """invalidate_guild while Redis is paused drops this process's copies at once, and
    reaches Redis and the other caches by itself once Redis answers again."""
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    here, there = (
        await redis_cache(redis_server.url, prefix),
        await redis_cache(redis_server.url, prefix),
    )
    client = redis_server.client()
    try:
        value, board, _ = await fill(here, 3)  # fill's keys are guild 3's
        kept = await fill(here, 4)

        async def load() -> str:
            return "cached"

        assert await there.get_or_load(value, load, 60, hot=True) == "cached"
        redis_server.pause()
        await quick(here.invalidate_guild(3))
        assert here.hot_get(value) is None
        redis_server.resume()
        assert await eventually(lambda: not client.exists(value, board), 4.0)
        assert await eventually(lambda: there.hot_get(value) is None, 2.0)
        assert client.exists(kept[0], kept[1]) == 2
    finally:
        client.close()
        await quick(here.close())
        await quick(there.close())


async def test_owed_clear_and_invalidations_are_retried_in_the_background(
    redis_server: RedisServer,
) -> None:
    """With no further call, the owed clear reaches Redis by itself once it answers, and is
    announced to the other caches. More owed keys than CACHE_MAX_ENTRIES become a clear."""
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    here, there = (
        await redis_cache(redis_server.url, prefix),
        await redis_cache(redis_server.url, prefix),
    )
    client = redis_server.client()
    try:
        keys = await fill(here, 2)

        async def load() -> str:
            return "cached"

        assert await there.get_or_load(keys[0], load, 60, hot=True) == "cached"
        assert there.hot_get(keys[0]) == "cached"
        redis_server.pause()
        assert await quick(here.clear()) is False
        redis_server.resume()
        assert await eventually(lambda: not any(client.exists(key) for key in keys), 4.0)
        assert await eventually(lambda: there.hot_get(keys[0]) is None, 2.0)

        small = await create_cache(
            load_settings(REDIS_URL=redis_server.url, CACHE_PREFIX=prefix, CACHE_MAX_ENTRIES=2)
        )
        try:
            many = [small.key("k", i) for i in range(4)]
            for key in many:
                await small.set_json(key, 1)
            redis_server.pause()
            for key in many:
                await quick(small.invalidate(key))
            redis_server.resume()
            assert await eventually(lambda: not any(client.exists(key) for key in many), 4.0)
        finally:
            await quick(small.close())
    finally:
        client.close()
        await quick(here.close())
        await quick(there.close())
