"""Per-member command rate limits: ``db.rate_limits``."""

from __future__ import annotations

from botdata.errors import InvalidRateLimitScopeError
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, checked, excerpt, text

#: Longest rate-limit scope.
MAX_SCOPE = 100


class RateLimitManager(Manager):
    """Counts commands per member against ``COMMAND_RATE_LIMIT`` per ``COMMAND_RATE_WINDOW``."""

    @checked
    async def hit(self, user_id: Snowflake, *, scope: str = "commands") -> bool:
        """Count one use of ``scope`` (what is limited, 1-100 characters) by ``user_id``; True
        when that is over the limit.

        Atomic across processes when the cache is Redis; per process otherwise (and while
        Redis is down). Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad id,
        :class:`~botdata.errors.InvalidRateLimitScopeError` for a bad scope and
        :class:`~botdata.errors.UnstorableTextError` for one with a NUL or a surrogate.
        """
        text(scope, "scope")
        if not isinstance(scope, str) or not 1 <= len(scope) <= MAX_SCOPE:
            raise InvalidRateLimitScopeError(
                f"scope must be a str of 1-{MAX_SCOPE} characters, not {excerpt(scope)}"
            )
        return await self.cache.check_rate_limit(
            self.cache.key("ratelimit", scope, user_id),
            self.settings.COMMAND_RATE_LIMIT,
            self.settings.COMMAND_RATE_WINDOW,
        )
