"""Per-guild numbers (cases, notes).

A number is taken with one statement that creates the guild's row when it is missing and bumps
its counter otherwise (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), and the numbered row
is written with it (:func:`insert_numbered`):

- on PostgreSQL in the same statement (the upsert is a data-modifying ``WITH``), which is atomic
  by itself: the guild row is locked only for that statement, and a failed insert (a broken
  constraint) undoes the bump;
- on SQLite (no ``INSERT`` inside ``WITH``) in one transaction of the two statements: the
  database write lock serialises writers, and a failed insert rolls the bump back.

So numbers are contiguous from 1, with no gaps and no duplicates, across any number of tasks and
processes.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, NamedTuple, TypeVar

from tortoise.connection import get_connection
from tortoise.fields import JSONField
from tortoise.models import Model
from tortoise.transactions import in_transaction

from botdata.managers.sql import GUILD_COLUMNS, columns, dialect_sql, fetch
from botdata.schemas import Schema

#: The guild counter of each kind of numbered row.
Counter = Literal["case_count", "note_count"]

S = TypeVar("S", bound=Schema)


@lru_cache(maxsize=2)
def _bump_sql(counter: Counter) -> str:
    """Upsert of the guild row (``$1`` its id, ``$2`` now) returning the bumped ``counter``."""
    first = {"case_count": "1, 0", "note_count": "0, 1"}[counter]
    return (
        f"INSERT INTO guilds ({GUILD_COLUMNS}) VALUES ($1, $2, $2, $2, {first}) "
        f"ON CONFLICT (id) DO UPDATE SET {counter} = guilds.{counter} + 1, updated_at = $2 "
        f"RETURNING {counter}"
    )


class _Plan(NamedTuple):
    """How :func:`insert_numbered` writes one kind of row (see :func:`_plan`)."""

    sql: str
    #: The JSON field of each given column (None for the others): its value is encoded.
    encode: tuple[JSONField[Any] | None, ...]
    #: The returned JSON columns and their fields: decoded.
    decode: tuple[tuple[str, JSONField[Any]], ...]


@lru_cache(maxsize=32)
def _plan(
    dialect: str,
    model: type[Model],
    counter: Counter,
    given_columns: tuple[str, ...],
    schema: type[S],
) -> _Plan:
    """The statement inserting ``given_columns`` into ``model``'s table and returning ``schema``'s
    fields.

    Arguments: ``$1`` guild id, ``$2`` now (``created_at``, ``updated_at``), then one per
    column; on SQLite the number comes last (taken by :func:`_bump_sql` before).
    """
    fields = model._meta.fields_map
    returning = tuple(schema.model_fields)
    names = ", ".join(
        f'"{name}"' for name in ("guild_id", "number", "created_at", "updated_at", *given_columns)
    )
    given = ", ".join(f"${n}" for n in range(3, len(given_columns) + 3))
    out = columns(model, schema)
    table = model._meta.db_table
    if dialect == "postgres":
        sql = (
            f"WITH g AS ({_bump_sql(counter)}) "
            f"INSERT INTO {table} ({names}) SELECT $1, g.{counter}, $2, $2, {given} FROM g "
            f"RETURNING {out}"
        )
    else:
        number = f"${len(given_columns) + 3}"
        sql = dialect_sql(
            f"INSERT INTO {table} ({names}) VALUES ($1, {number}, $2, $2, {given}) RETURNING {out}",
            dialect,
        )

    def json_field(name: str) -> JSONField[Any] | None:
        field = fields.get(name)
        return field if isinstance(field, JSONField) else None

    encode = tuple(json_field(name) for name in given_columns)
    decode = tuple((name, field) for name in returning if (field := json_field(name)))
    return _Plan(sql, encode, decode)


async def insert_numbered(
    dialect: str,
    model: type[Model],
    counter: Counter,
    guild_id: int,
    values: dict[str, Any],
    now: datetime,
    schema: type[S],
) -> S:
    """Insert a ``model`` row of ``guild_id`` with the guild's next ``counter`` number (the
    guild's row is made if missing), ``created_at`` and ``updated_at`` = ``now`` and the other
    columns from ``values`` (column names; JSON columns as Python values).

    Validate before calling: a broken constraint raises Tortoise's ``IntegrityError`` and
    writes nothing (the counter is not bumped). Returns the stored row as ``schema`` (whose
    fields are all columns of the table), without building a model instance.
    """
    plan = _plan(dialect, model, counter, tuple(values), schema)
    params = [
        value if field is None else field.to_db_value(value, model)
        for field, value in zip(plan.encode, values.values(), strict=True)
    ]
    if dialect == "postgres":
        rows = await get_connection("default").execute_query_dict(
            plan.sql, [guild_id, now, *params]
        )
    else:
        async with in_transaction() as conn:
            bumped = await fetch(conn, dialect, _bump_sql(counter), [guild_id, now])
            rows = await conn.execute_query_dict(
                plan.sql, [guild_id, now, *params, bumped[0][counter]]
            )
    row = rows[0]
    for name, field in plan.decode:
        row[name] = field.to_python_value(row[name])
    return schema.model_validate(row)
