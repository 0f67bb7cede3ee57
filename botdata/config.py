"""Settings read from the environment and ``.env`` (pydantic-settings).

A bad value stops the program at start with a message naming the variable; see
:func:`load_settings`. ``DATABASE_URL`` is checked in full (:func:`_check_database_url`), so that
no malformed URL reaches Tortoise or asyncpg later; the messages never quote it (it may hold a
password).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import ConfigurationError as TortoiseConfigurationError

from botdata.errors import ConfigurationError

#: The embedded default: a SQLite file in the working directory, no services needed.
DEFAULT_DATABASE_URL = "sqlite://botdata.sqlite3"

#: Schemes of a PostgreSQL ``DATABASE_URL`` (all mean the same).
_POSTGRES_SCHEMES = ("postgres", "postgresql", "asyncpg")
#: The ``ssl`` values of a PostgreSQL ``DATABASE_URL`` (asyncpg's modes, or true/false).
_SSL_MODES = ("true", "false", "disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Query parameters a PostgreSQL DATABASE_URL may carry (passed to asyncpg), with the type of the
# value (None: any text). Pool sizes and timeouts have settings of their own.
_POSTGRES_OPTIONS: dict[str, type[int] | type[float] | None] = {
    "ssl": None,
    "application_name": None,
    "schema": None,
    "host": None,  # a Unix socket directory
    "statement_cache_size": int,  # 0 behind PgBouncer in transaction mode
    "max_inactive_connection_lifetime": float,
}
# SQLite query parameters are PRAGMAs; these are botdata's own.
_SQLITE_RESERVED = {
    "busy_timeout": "set DATABASE_LOCK_TIMEOUT instead",
    "foreign_keys": "botdata needs foreign keys on",
    "install_regexp_functions": "not supported",
}
_URL = re.compile(r"([^/?#]*)([^?#]*)(?:\?([^#]*))?(#.*)?", re.DOTALL)
_HOST = re.compile(r"[A-Za-z0-9._-]+")
_PRAGMA = re.compile(r"[A-Za-z_]+=[A-Za-z0-9_-]+")
_ENCODE = "; percent-encode any of : / ? # [ ] @ in the user name or password"


def _check_database_url(url: str) -> str:
    """Return ``url`` if it is a database URL botdata can use, else raise ``ValueError`` saying
    what is wrong (never quoting the URL, which may hold a password).

    ``sqlite://PATH`` (``PATH`` not empty; query parameters are PRAGMAs) or
    ``postgres://[user[:password]@][host][:port]/database`` (also ``postgresql://``; ``host`` a
    name, an IPv4 address or a bracketed IPv6 address; ``port`` 1-65535; query parameters from
    ``_POSTGRES_OPTIONS``).
    """
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in ("sqlite", *_POSTGRES_SCHEMES):
        raise ValueError("must start with sqlite://, postgres:// or postgresql://")
    match = _URL.fullmatch(rest)
    assert match is not None  # every group may be empty
    authority, path, query, fragment = match.groups()
    if fragment is not None:
        raise ValueError("must not contain '#'" + _ENCODE)
    if scheme == "sqlite":
        if not authority + path or "\x00" in rest:
            raise ValueError("sqlite:// needs a file path (sqlite://botdata.sqlite3)")
        _check_sqlite_query(query or "")
    else:
        _check_authority(authority.rpartition("@")[2])
        if not re.fullmatch(r"/[^/]+", path):
            raise ValueError("must name one database: postgres://user:password@host:port/database")
        _check_postgres_query(query or "")
    try:
        expand_db_url(url)  # what Tortoise does with it later
    except (TortoiseConfigurationError, ValueError):
        hint = "" if scheme == "sqlite" else _ENCODE
        raise ValueError("is not a database URL Tortoise ORM can read" + hint) from None
    return url


def _check_authority(authority: str) -> None:
    """Check ``host[:port]`` of a PostgreSQL URL (both optional)."""
    if authority.startswith("["):
        host, bracket, rest = authority[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("the host in [ ] is not an IPv6 address" + _ENCODE) from None
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("an IPv6 host is written [address] or [address]:port" + _ENCODE)
        port = rest[1:] if rest else None
    else:
        host, colon, after = authority.partition(":")
        if host and not _HOST.fullmatch(host):
            raise ValueError(
                "the host is not a host name or an IP address (IPv6 in brackets: [::1])" + _ENCODE
            )
        port = after if colon else None
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError("the port is not a number from 1 to 65535" + _ENCODE)


def _query(query: str) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a URL's query string."""
    try:
        return parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError("the query string is not name=value pairs joined by &") from None


def _check_postgres_query(query: str) -> None:
    for name, value in _query(query):
        if name not in _POSTGRES_OPTIONS:
            raise ValueError(
                "has a query parameter botdata does not pass on (allowed: "
                + ", ".join(_POSTGRES_OPTIONS)
                + "; pool sizes and timeouts are settings of their own)"
            )
        if name == "ssl" and value.lower() not in _SSL_MODES:
            raise ValueError("ssl must be one of " + ", ".join(_SSL_MODES))
        kind = _POSTGRES_OPTIONS[name]
        if kind is not None and not _non_negative(kind, value):
            raise ValueError(f"{name} must be a number >= 0")


def _non_negative(kind: type[int] | type[float], value: str) -> bool:
    """Whether ``value`` reads as a finite number >= 0 of type ``kind`` (int or float)."""
    try:
        return 0 <= kind(value) < math.inf
    except ValueError:
        return False


def _check_sqlite_query(query: str) -> None:
    for name, value in _query(query):
        if not _PRAGMA.fullmatch(f"{name}={value}"):
            raise ValueError("SQLite query parameters are PRAGMAs: name=value, letters and digits")
        if name.lower() in _SQLITE_RESERVED:
            raise ValueError(f"{name}: {_SQLITE_RESERVED[name.lower()]}")


#: Upper bound of the settings that are durations in seconds: past it a timedelta or a Redis
#: expiry would overflow, and no such setting is meant to be longer.
_YEAR = 365 * 86400


class Settings(BaseSettings):
    """botdata's configuration. Every field is read from the variable of the same name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    DATABASE_URL: str = DEFAULT_DATABASE_URL
    # Unset: the in-process cache. Set (redis://...): Redis.
    REDIS_URL: str | None = None
    DATABASE_ECHO: bool = False
    DATABASE_POOL_MIN: int = Field(default=1, ge=1, le=10_000)
    DATABASE_POOL_MAX: int = Field(default=10, ge=1, le=10_000)
    #: Seconds ``connect()`` may take to reach the database and check its schema; also the
    #: limit of opening each new pooled PostgreSQL connection.
    DATABASE_CONNECT_TIMEOUT: float = Field(default=5.0, gt=0, le=86400)
    #: Seconds a statement waits for a row or table lock held by someone else (PostgreSQL
    #: ``lock_timeout``, SQLite's busy timeout) before DatabaseTimeoutError.
    DATABASE_LOCK_TIMEOUT: float = Field(default=3.0, gt=0, le=86400)
    #: Seconds a PostgreSQL statement may run (``statement_timeout``) before
    #: DatabaseTimeoutError; 0: no limit (e.g. for ``aerich upgrade`` of a large table).
    DATABASE_STATEMENT_TIMEOUT: float = Field(default=30.0, ge=0, le=86400)
    #: Seconds a call waits for a free connection (PostgreSQL: the pool; SQLite: the process's
    #: one connection) before DatabaseTimeoutError.
    DATABASE_POOL_TIMEOUT: float = Field(default=3.0, gt=0, le=86400)

    GUILD_CONFIG_TTL: int = Field(default=3600, gt=0, le=_YEAR)
    USER_CASES_TTL: int = Field(default=1800, gt=0, le=_YEAR)
    XP_LEADERBOARD_TTL: int = Field(default=3600, gt=0, le=_YEAR)
    WEB_SESSION_TTL: int = Field(default=86400, gt=0, le=_YEAR)

    #: Command prefix of guilds that set none (and of DMs): 1-10 characters, no whitespace.
    DEFAULT_PREFIX: str = Field(default="$", pattern=r"^\S{1,10}$")

    COMMAND_RATE_LIMIT: int = Field(default=10, gt=0, le=1_000_000)
    COMMAND_RATE_WINDOW: int = Field(default=60, gt=0, le=_YEAR)

    #: Prefix of every cache key and pub/sub channel (several bots can share one Redis).
    CACHE_PREFIX: str = Field(default="botdata", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    #: Entries kept by the in-process cache (and by the hot layer in front of Redis).
    CACHE_MAX_ENTRIES: int = Field(default=100_000, gt=0, le=100_000_000)
    #: Seconds a hot-layer entry lives at most (pub/sub invalidation usually drops it sooner).
    HOT_CACHE_TTL: float = Field(default=60.0, gt=0, le=_YEAR)
    #: Seconds a Redis call may take (waiting for a connection included) before it is treated
    #: as a miss; two such calls in a row make the cache treat Redis as down (see
    #: botdata.cache.redis) and use the database.
    REDIS_TIMEOUT: float = Field(default=0.25, gt=0, le=3600)

    #: Pending reminders one member may have in one guild.
    REMINDER_MAX_PER_USER: int = Field(default=25, gt=0, le=1_000_000)
    #: Seconds a dispatcher holds the reminders it claimed before another may take them over.
    REMINDER_CLAIM_LEASE: float = Field(default=60.0, gt=0, le=_YEAR)
    #: Seconds before a failed delivery is retried; doubled per further failure, up to an hour.
    REMINDER_RETRY_DELAY: float = Field(default=30.0, gt=0, le=_YEAR)
    #: Seconds between a dispatcher's fallback checks (wake-ups normally come sooner).
    REMINDER_RECHECK_INTERVAL: float = Field(default=30.0, gt=0, le=_YEAR)

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, url: str) -> str:
        return _check_database_url(url)

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
    def _pool_bounds(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("DATABASE_POOL_MIN", 1)
        if value < minimum:
            raise ValueError(f"must be >= DATABASE_POOL_MIN ({minimum})")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; ``overrides`` (by field name) win over the environment.

    Raises :class:`botdata.errors.ConfigurationError` naming each bad variable.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid botdata settings: {problems}") from None
