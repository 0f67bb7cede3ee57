"""Per-member command rate limits: ``db.rate_limits``."""

from __future__ import annotations

from botdata.managers.base import Manager
from botdata.managers.checks import snowflake


class RateLimitManager(Manager):
    """Counts commands per member against ``COMMAND_RATE_LIMIT`` per ``COMMAND_RATE_WINDOW``."""

    async def hit(self, user_id: int, *, scope: str = "commands") -> bool:
        """Count one use of ``scope`` by ``user_id``; True when that is over the limit.

        Atomic across processes when the cache is Redis; per process otherwise (and while
        Redis is down). Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        snowflake(user_id, "user_id")
        return await self.cache.check_rate_limit(
            self.cache.key("ratelimit", scope, user_id),
            self.settings.COMMAND_RATE_LIMIT,
            self.settings.COMMAND_RATE_WINDOW,
        )
