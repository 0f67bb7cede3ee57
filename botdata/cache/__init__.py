"""Cache layer: one interface (:class:`Cache`), a Redis and an in-process backend."""

from __future__ import annotations

from botdata.cache.base import Cache
from botdata.cache.memory import MemoryCache
from botdata.cache.redis import RedisCache
from botdata.config import Settings


async def create_cache(settings: Settings) -> Cache:
    """The cache ``settings`` ask for: :class:`RedisCache` when ``REDIS_URL`` is set, else
    :class:`MemoryCache` (in-process).

    Never fails because Redis is unreachable: the Redis cache then starts degraded (a miss for
    every read) and connects by itself when Redis answers. Close it with ``await cache.close()``.
    """
    if settings.REDIS_URL is None:
        return MemoryCache(settings)
    cache = RedisCache(settings)
    await cache.start()
    return cache


__all__ = ["Cache", "MemoryCache", "RedisCache", "create_cache"]
