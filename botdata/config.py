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
    #: Unset: the in-process cache. Set (``redis://...``): Redis.
    REDIS_URL: str | None = None
    DATABASE_ECHO: bool = False
    DATABASE_POOL_MIN: int = Field(default=1, ge=1)
    DATABASE_POOL_MAX: int = Field(default=10, ge=1)

    GUILD_CONFIG_TTL: int = Field(default=3600, gt=0)
    USER_CASES_TTL: int = Field(default=1800, gt=0)
    XP_LEADERBOARD_TTL: int = Field(default=3600, gt=0)
    WEB_SESSION_TTL: int = Field(default=86400, gt=0)

    COMMAND_RATE_LIMIT: int = Field(default=10, gt=0)
    COMMAND_RATE_WINDOW: int = Field(default=60, gt=0)

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
