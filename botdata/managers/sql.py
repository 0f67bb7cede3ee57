"""Raw SQL on both dialects: one query text for PostgreSQL and SQLite, column lists from models.

Managers write raw SQL where the ORM cannot say it in one atomic statement (``INSERT ... ON
CONFLICT ... RETURNING``, ``FOR UPDATE SKIP LOCKED``, data-modifying ``WITH``). Such a query is
written once with ``$1``-style placeholders (:func:`dialect_sql` turns them into SQLite's
``?1``), run with :func:`fetch`, and names the columns it returns with :func:`columns`, derived
from the model, so a column list is never kept by hand. :func:`row_schema` turns a returned row
into a schema (SQLite returns timestamps as text and JSON as strings).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from botdata.schemas import Schema

S = TypeVar("S", bound=Schema)

_PLACEHOLDER = re.compile(r"\$(\d+)")


def dialect_sql(query: str, dialect: str) -> str:
    """``query`` written with ``$1``-style placeholders, in the form ``dialect`` expects.

    SQLite takes numbered ``?1`` placeholders, so one text (and one argument list, where a
    number may repeat) serves both backends. Returns the query for ``dialect``.
    """
    return query if dialect == "postgres" else _PLACEHOLDER.sub(r"?\1", query)


async def fetch(
    conn: BaseDBAsyncClient, dialect: str, query: str, values: Sequence[Any]
) -> list[dict[str, Any]]:
    """Run ``query`` (``$n`` placeholders) on ``conn``; returns the rows it returns, as dicts.

    Raises what the database driver raises (through Tortoise: ``IntegrityError``,
    ``OperationalError``).
    """
    return await conn.execute_query_dict(dialect_sql(query, dialect), list(values))


@lru_cache(maxsize=64)
def columns(model: type[Model], schema: type[Schema] | None = None) -> str:
    """The quoted, comma-separated columns of ``model``'s table (for ``SELECT`` and
    ``RETURNING``): all of them in the model's field order, or only those holding ``schema``'s
    fields, in the schema's order.

    Read from the model's metadata, so call it after Tortoise is initialised (foreign key
    columns such as ``guild_id`` are added then). Raises :class:`ValueError` when ``schema``
    has a field that is not a column of ``model``.
    """
    projection = model._meta.fields_db_projection
    if schema is None:
        names = list(projection.values())
    else:
        missing = [name for name in schema.model_fields if name not in projection]
        if missing:
            raise ValueError(f"{schema.__name__} fields {missing} are not columns of {model}")
        names = [projection[name] for name in schema.model_fields]
    return ", ".join(f'"{name}"' for name in names)


def row_schema(model: type[Model], schema: type[S], row: dict[str, Any]) -> S:
    """Returns ``row`` (columns of ``model``, as a raw query returns them) as ``schema``.

    Each value goes through its field's conversion (SQLite's text timestamps and integer
    booleans, JSON text, enums). Raises pydantic's ``ValidationError`` when the row does not
    fit the schema.
    """
    meta = model._meta
    values = {}
    for column, value in row.items():
        name = meta.fields_db_projection_reverse[column]
        values[name] = meta.fields_map[name].to_python_value(value)
    return schema.model_validate(values)


#: The columns a new guild row is given values for, in this order (the others have database
#: defaults): used by :func:`ensure_guild` and by the numbering upsert.
GUILD_COLUMNS = "id, created_at, updated_at, joined_at, case_count, note_count"


async def ensure_guild(conn: BaseDBAsyncClient, dialect: str, guild_id: int, now: datetime) -> None:
    """Create the row of ``guild_id`` unless it exists (for rows that reference the guild),
    made at ``now``.

    Returns nothing; raises what :func:`fetch` raises.
    """
    await fetch(
        conn,
        dialect,
        f"INSERT INTO guilds ({GUILD_COLUMNS}) VALUES ($1, $2, $2, $2, 0, 0) "
        "ON CONFLICT (id) DO NOTHING",
        [guild_id, now],
    )
