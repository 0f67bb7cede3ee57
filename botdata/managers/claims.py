"""Claim/lease: due rows handed to one worker at a time, from any number of tasks and processes.

Work that comes due in a table (a reminder to deliver, a case expiry to lift, an AFK status to
end) is done through a :class:`ClaimQueue` over that table, in three steps:

1. **Claim** (:meth:`ClaimQueue.claim`): one statement takes up to ``limit`` due rows that are
   not claimed, or whose claim's lease ran out, sets their claim column to the lease's end and
   returns them. On PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED`` in a
   materialized ``WITH`` (run once: PostgreSQL's re-check of a changed row cannot re-run it and
   reach past the limit), and the ``UPDATE`` checks the due condition again, so concurrent
   claimers take disjoint rows; on SQLite the statement holds the database's single write lock.
2. **Act**: the caller does the work, outside any transaction.
3. **Complete** (:meth:`ClaimQueue.complete`): the work is done; the row is marked done (or
   deleted) and never claimed again. Or **release** (:meth:`ClaimQueue.release`): the work
   failed; the claim ends at once (or at a retry time) and the row is claimed again then.

A worker that dies holding claims loses them when the lease ends and another worker takes the
rows: each row's work is done at least once, never lost; it is repeated only when a worker
overran its lease or died between acting and completing. Claims, releases and completions are
bookkeeping: they leave ``updated_at`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from tortoise.connection import get_connection
from tortoise.models import Model

from botdata.managers.sql import columns, fetch, row_schema
from botdata.schemas import Schema

S = TypeVar("S", bound=Schema)


@dataclass(frozen=True)
class ClaimQueue(Generic[S]):
    """The claimable rows of one table, returned as ``schema``.

    ``due`` is the SQL condition of a row whose work is due, ``$1`` standing for now (the claim
    column is checked by the queue, not in it); ``order`` the fields (columns of the table and
    fields of ``schema``) rows are claimed and returned in, the oldest work first. ``pending``
    is the Tortoise filter of a row whose work is not completed yet; completing sets ``done``
    to now, or deletes the row when ``done`` is None. ``column`` holds the claim's end.
    """

    model: type[Model]
    schema: type[S]
    due: str
    order: tuple[str, ...]
    pending: Mapping[str, Any] = field(default_factory=dict)
    done: str | None = None
    column: str = "claimed_until"

    def claim_sql(self, dialect: str) -> str:
        """Returns the claim statement for ``dialect``: ``$1`` now, ``$2`` the lease's end,
        ``$3`` the most rows to claim (see the module docstring)."""
        table = self.model._meta.db_table
        due = f"{self.due} AND ({self.column} IS NULL OR {self.column} <= $1)"
        lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgres" else ""
        return (
            f"WITH picked AS MATERIALIZED (SELECT id FROM {table} WHERE {due} "
            f"ORDER BY {', '.join(self.order)} LIMIT $3{lock}) "
            f"UPDATE {table} SET {self.column} = $2 "
            f"WHERE id IN (SELECT id FROM picked) AND {due} "
            f"RETURNING {columns(self.model, self.schema)}"
        )

    async def claim(self, dialect: str, now: datetime, until: datetime, limit: int) -> list[S]:
        """Claim up to ``limit`` rows due at ``now`` until ``until`` (the lease's end).

        Returns the claimed rows in the queue's order; each is claimed by this call only.
        Validate the arguments before calling (aware datetimes, ``until`` after ``now``,
        ``limit`` positive); raises what the database raises.
        """
        rows = await fetch(
            get_connection("default"), dialect, self.claim_sql(dialect), [now, until, limit]
        )
        claimed = [row_schema(self.model, self.schema, row) for row in rows]
        # RETURNING gives no order.
        return sorted(claimed, key=lambda row: tuple(getattr(row, name) for name in self.order))

    async def complete(self, now: datetime, /, **filters: Any) -> int:
        """Record that the work of the rows matching ``filters`` is done (at ``now``): each
        pending one is marked done and its claim cleared, or deleted. It is never claimed again.

        Returns how many rows were completed (0 when none was pending). Raises what the
        database raises.
        """
        rows = self.model.filter(**{**self.pending, **filters})
        if self.done is None:
            return await rows.delete()
        return await rows.update(**{self.done: now, self.column: None})

    async def release(
        self,
        *,
        retry_at: datetime | None = None,
        values: Mapping[str, Any] | None = None,
        **filters: Any,
    ) -> int:
        """Give up the claims on the pending, claimed rows matching ``filters`` (their work
        failed or was not started): they are claimed again from ``retry_at`` (None: at once).
        ``values`` are set in the same ``UPDATE`` (e.g. a failure count).

        Returns how many rows were released (0 when none was claimed). Raises what the
        database raises.
        """
        claimed = {**self.pending, f"{self.column}__isnull": False, **filters}
        rows = self.model.filter(**claimed)
        return await rows.update(**{self.column: retry_at}, **(values or {}))
