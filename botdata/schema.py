"""Where the schema comes from: the Tortoise configuration and the Aerich migrations.

``TORTOISE_ORM`` is what Aerich reads (``[tool.aerich]`` in pyproject.toml and ``aerich.ini``);
it follows ``DATABASE_URL`` like the rest of botdata.

Every migration file in ``migrations/models/`` holds the SQL of both dialects, keyed by
``db.capabilities.dialect``, so ``aerich upgrade`` builds the same schema on PostgreSQL and on
SQLite. ``python -m botdata.makemigration --name ...`` writes such a file; see the README.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tortoise.backends.base.config_generator import expand_db_url

from botdata.config import Settings, load_settings

if TYPE_CHECKING:
    import asyncpg

_PACKAGE = Path(__file__).resolve().parent
# A checkout (or editable install) has migrations/ beside the package; a wheel carries a copy
# inside it (the package-dir entry "botdata.migrations" in pyproject.toml).
_CHECKOUT = _PACKAGE.parent / "migrations"
#: Aerich's migration folder (it keeps one sub-folder per app: ``models/``).
MIGRATIONS_LOCATION = str(_CHECKOUT if (_CHECKOUT / "models").is_dir() else _PACKAGE / "migrations")
#: The Tortoise app label of botdata's models.
APP = "models"


def normalise_url(url: str) -> str:
    """Return ``url`` in the form Tortoise expects (``postgresql://`` becomes ``postgres://``)."""
    if url.startswith("postgresql://"):
        return "postgres://" + url[len("postgresql://") :]
    return url


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, safe for messages and logs.

    Parsed by hand: ``urllib`` refuses some URLs botdata accepts (a ``[`` in a password)."""
    scheme, _, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, _ = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{rest[len(userinfo) + 1 :]}"


def dialect_of(url: str) -> str:
    """``"sqlite"`` or ``"postgres"``, from a database URL."""
    return "sqlite" if url.startswith("sqlite://") else "postgres"


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pool ``reset`` hook: nothing beyond asyncpg's own rollback of an open transaction.

    asyncpg's default reset sends one more query on every release (unlock session advisory
    locks, close cursors, UNLISTEN, RESET ALL); botdata leaves none of those behind (its
    advisory locks are transaction-scoped), so that round trip is pure cost.
    """


def tortoise_config(settings: Settings) -> dict[str, Any]:
    """Build the Tortoise configuration for ``settings.DATABASE_URL`` (validated by
    :mod:`botdata.config`): botdata's database clients (:mod:`botdata.backends`) with the
    settings' pool size and timeouts, UTC, timezone-aware. On PostgreSQL the timeouts of locks
    and statements are server settings of every connection, and the pool's release does no
    session reset (see :func:`_keep_session`); on SQLite the lock timeout is the busy timeout.
    """
    url = normalise_url(settings.DATABASE_URL)
    if settings.DATABASE_ECHO:
        logging.getLogger("tortoise.db_client").setLevel(logging.DEBUG)
    connection = expand_db_url(url)
    credentials = connection["credentials"]
    credentials["pool_timeout"] = settings.DATABASE_POOL_TIMEOUT
    if dialect_of(url) == "postgres":
        connection["engine"] = "botdata.backends.postgres"
        credentials.update(
            minsize=settings.DATABASE_POOL_MIN,
            maxsize=settings.DATABASE_POOL_MAX,
            timeout=settings.DATABASE_CONNECT_TIMEOUT,  # asyncpg's, for each new connection
            reset=_keep_session,
            server_settings={
                "lock_timeout": _milliseconds(settings.DATABASE_LOCK_TIMEOUT),
                "statement_timeout": _milliseconds(settings.DATABASE_STATEMENT_TIMEOUT),
            },
        )
        ssl = dict(parse_qsl(url.partition("?")[2])).get("ssl", "").lower()
        if ssl:  # Tortoise reads it as a bool: "disable" would mean True
            credentials["ssl"] = {"true": True, "false": False}.get(ssl, ssl)
    else:
        connection["engine"] = "botdata.backends.sqlite"
        credentials["busy_timeout"] = _milliseconds(settings.DATABASE_LOCK_TIMEOUT)
    return {
        "connections": {"default": connection},
        "apps": {
            APP: {
                "models": ["botdata.models", "aerich.models"],
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _milliseconds(seconds: float) -> str:
    """``seconds`` as whole milliseconds (rounded up: a positive limit never becomes 0)."""
    return str(math.ceil(seconds * 1000))


def __getattr__(name: str) -> Any:
    # Computed on first access so that importing this module never fails on a bad setting.
    if name == "TORTOISE_ORM":
        return tortoise_config(load_settings())
    raise AttributeError(name)
