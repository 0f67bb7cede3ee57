"""Settings read from the environment and ``.env`` (pydantic-settings).

A bad value stops the program at start with a message naming the variable; see
:func:`load_settings`.
"""

from __future__ import annotations

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from botdata.errors import ConfigurationError

#: The embedded default: a SQLite file in the working directory, no services needed.
DEFAULT_DATABASE_URL = "sqlite://botdata.sqlite3"


class Settings(BaseSettings):
    """botdata's configuration. Every field is read from the variable of the same name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    DATABASE_URL: str = DEFAULT_DATABASE_URL
    # Unset: the in-process cache. Set (redis://...): Redis.
    REDIS_URL: str | None = None
    DATABASE_ECHO: bool = False
    DATABASE_POOL_MIN: int = Field(default=1, ge=1)
    DATABASE_POOL_MAX: int = Field(default=10, ge=1)

    GUILD_CONFIG_TTL: int = Field(default=3600, gt=0)
    USER_CASES_TTL: int = Field(default=1800, gt=0)
    XP_LEADERBOARD_TTL: int = Field(default=3600, gt=0)
    WEB_SESSION_TTL: int = Field(default=86400, gt=0)

    #: Command prefix of guilds that set none (and of DMs): 1-10 characters, no whitespace.
    DEFAULT_PREFIX: str = Field(default="$", pattern=r"^\S{1,10}$")

    COMMAND_RATE_LIMIT: int = Field(default=10, gt=0)
    COMMAND_RATE_WINDOW: int = Field(default=60, gt=0)

    #: Prefix of every cache key and pub/sub channel (several bots can share one Redis).
    CACHE_PREFIX: str = Field(default="botdata", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    #: Entries kept by the in-process cache (and by the hot layer in front of Redis).
    CACHE_MAX_ENTRIES: int = Field(default=100_000, gt=0)
    #: Seconds a hot-layer entry lives at most (pub/sub invalidation usually drops it sooner).
    HOT_CACHE_TTL: float = Field(default=60.0, gt=0)
    #: Seconds a Redis call may take (waiting for a connection included) before it is treated
    #: as a miss; two such calls in a row make the cache treat Redis as down (see
    #: botdata.cache.redis) and use the database.
    REDIS_TIMEOUT: float = Field(default=0.25, gt=0)

    #: Pending reminders one member may have in one guild.
    REMINDER_MAX_PER_USER: int = Field(default=25, gt=0)
    #: Seconds a dispatcher holds the reminders it claimed before another may take them over.
    REMINDER_CLAIM_LEASE: float = Field(default=60.0, gt=0)
    #: Seconds before a failed delivery is retried; doubled per further failure, up to an hour.
    REMINDER_RETRY_DELAY: float = Field(default=30.0, gt=0)
    #: Seconds between a dispatcher's fallback checks (wake-ups normally come sooner).
    REMINDER_RECHECK_INTERVAL: float = Field(default=30.0, gt=0)

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme = url.split("://", 1)[0]
        if "://" not in url or scheme not in {"sqlite", "postgres", "postgresql", "asyncpg"}:
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        return url

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url in (None, ""):
            return None
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url

    @field_validator("DATABASE_POOL_MAX")
    @classmethod
    def _pool_bounds(cls, value: int, info) -> int:  # type: ignore[no-untyped-def]
        minimum = info.data.get("DATABASE_POOL_MIN", 1)
        if value < minimum:
            raise ValueError(f"must be >= DATABASE_POOL_MIN ({minimum})")
        return value


def load_settings(**overrides: object) -> Settings:
    """Read the settings; ``overrides`` (by field name) win over the environment.

    Raises :class:`botdata.errors.ConfigurationError` naming each bad variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid botdata settings: {problems}") from None
