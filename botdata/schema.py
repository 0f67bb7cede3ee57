"""Where the schema comes from: the Tortoise configuration and the Aerich migrations.

``TORTOISE_ORM`` is what Aerich reads (``[tool.aerich]`` in pyproject.toml and ``aerich.ini``);
it follows ``DATABASE_URL`` like the rest of botdata.

Every migration file in ``migrations/models/`` holds the SQL of both dialects, keyed by
``db.capabilities.dialect``, so ``aerich upgrade`` builds the same schema on PostgreSQL and on
SQLite. ``python -m botdata.makemigration --name ...`` writes such a file; see the README.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise.backends.base.config_generator import expand_db_url

from botdata.config import Settings, load_settings

if TYPE_CHECKING:
    import asyncpg

_PACKAGE = Path(__file__).resolve().parent
# A checkout (or editable install) has migrations/ beside the package; a wheel carries a copy
# inside it (see [tool.hatch.build.targets.wheel.force-include] in pyproject.toml).
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
    """Return ``url`` with its password replaced by ``***``, safe for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[1]}"))


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
    """Build the Tortoise configuration for ``settings.DATABASE_URL`` (UTC, timezone-aware;
    on PostgreSQL the pool's release does no session reset, see :func:`_keep_session`)."""
    url = normalise_url(settings.DATABASE_URL)
    if dialect_of(url) == "postgres":
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query.setdefault("minsize", str(settings.DATABASE_POOL_MIN))
        query.setdefault("maxsize", str(settings.DATABASE_POOL_MAX))
        url = urlunsplit(parts._replace(query=urlencode(query)))
    if settings.DATABASE_ECHO:
        logging.getLogger("tortoise.db_client").setLevel(logging.DEBUG)
    connection: str | dict[str, Any] = url
    if dialect_of(url) == "postgres":
        connection = expand_db_url(url)
        connection["credentials"]["reset"] = _keep_session
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


def __getattr__(name: str) -> Any:
    # Computed on first access so that importing this module never fails on a bad setting.
    if name == "TORTOISE_ORM":
        return tortoise_config(load_settings())
    raise AttributeError(name)
