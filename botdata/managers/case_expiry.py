"""Lifting expired cases (unban, untimeout, unjail) exactly once, from any number of processes.

A worker calls :meth:`CaseExpiry.claim_due` periodically, carries out each claimed case's
action, then calls :meth:`CaseExpiry.complete_expiry` (or :meth:`CaseExpiry.release` when the
action failed). A claim is a lease: if the worker dies, the case is handed out again once the
lease has run out, so the lease must outlast the action (a worker that overruns it may find
the case claimed by another). Claims and completions are bookkeeping: ``updated_at`` stays.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tortoise.connection import get_connection

from botdata.errors import CaseNotFoundError, InvalidExpiryError
from botdata.managers.base import Manager
from botdata.managers.checks import aware, check_number, excerpt, page, shifted, snowflake
from botdata.managers.sql import fetch
from botdata.models import Case
from botdata.schemas import CaseSchema

#: How long a claim of :meth:`CaseExpiry.claim_due` keeps other claimers off a case.
DEFAULT_LEASE = timedelta(minutes=5)

# Due: expired, still active, not lifted yet, and not claimed (or the claim's lease ran out).
_DUE = (
    "active AND expires_at IS NOT NULL AND expires_at <= $1 AND expiry_handled_at IS NULL "
    "AND (expiry_claimed_until IS NULL OR expiry_claimed_until <= $1)"
)


class CaseExpiry(Manager):
    """The expiry part of ``db.cases`` (:class:`~botdata.managers.cases.CaseManager`)."""

    async def claim_due(
        self, now: datetime, limit: int = 50, *, lease: timedelta = DEFAULT_LEASE
    ) -> list[CaseSchema]:
        """Claim up to ``limit`` expired cases to lift (unban, untimeout, unjail), of every guild.

        Due: active cases whose ``expires_at`` is at or before ``now`` (tempbans, timeouts,
        timed jails, custom types with ``requires_duration``) that are not handled yet and not
        claimed, or whose claim's lease ran out. Each is claimed until ``now + lease`` in the
        same statement, so concurrent claimers (tasks or processes) never get the same case.
        Call :meth:`complete_expiry` once the action is done, or :meth:`release` when it failed
        (or let the lease run out): the case is then claimed again.

        Returns the claimed cases, soonest expiry first. Raises
        :class:`~botdata.errors.InvalidExpiryError` (``now`` not timezone-aware, ``lease`` not a
        positive timedelta, ``now + lease`` beyond the year 9999) and
        :class:`~botdata.errors.InvalidPageError` (``limit`` not 1-100).
        """
        now = aware(now, "now")
        page(limit, None)
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise InvalidExpiryError(f"lease must be a positive timedelta, not {excerpt(lease)}")
        claimed_until = shifted(now, lease, "lease")
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        rows = await fetch(
            get_connection("default"),
            self.db.dialect,
            # MATERIALIZED: the selection runs once (re-run by PostgreSQL's row re-checks, an
            # inlined subquery could reach past the limit).
            f"WITH due AS MATERIALIZED "
            f"(SELECT id FROM cases WHERE {_DUE} ORDER BY expires_at, id LIMIT $3{lock}) "
            f"UPDATE cases SET expiry_claimed_until = $2 "
            f"WHERE id IN (SELECT id FROM due) AND {_DUE} RETURNING id",
            [now, claimed_until, limit],
        )
        claimed = await Case.filter(id__in=[row["id"] for row in rows]).order_by("expires_at", "id")
        return [CaseSchema.model_validate(case) for case in claimed]

    async def complete_expiry(self, guild_id: int, number: int) -> bool:
        """Record that the case's expiry was carried out; it is never claimed again.

        Returns True, or False when it was recorded before or the case does not expire.
        Raises :class:`~botdata.errors.CaseNotFoundError`,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        now = datetime.now(timezone.utc)
        return await self._expiry_update(
            guild_id, number, {}, {"expiry_handled_at": now, "expiry_claimed_until": None}
        )

    async def release(self, guild_id: int, number: int) -> bool:
        """Give up the claim on the case (its action failed): the next :meth:`claim_due` takes it.

        Returns True, or False when it was not claimed or is already handled. Raises
        :class:`~botdata.errors.CaseNotFoundError`,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        claimed = {"expiry_claimed_until__isnull": False}
        return await self._expiry_update(guild_id, number, claimed, {"expiry_claimed_until": None})

    async def _expiry_update(
        self, guild_id: int, number: int, conditions: dict[str, Any], values: dict[str, Any]
    ) -> bool:
        """Update the case if it expires, is not handled yet and meets ``conditions``."""
        snowflake(guild_id, "guild_id")
        check_number(number, "case", CaseNotFoundError)
        updated = await Case.filter(
            guild_id=guild_id,
            number=number,
            expires_at__isnull=False,
            expiry_handled_at__isnull=True,
            **conditions,
        ).update(**values)
        if not updated and not await Case.exists(guild_id=guild_id, number=number):
            raise CaseNotFoundError(f"guild {guild_id} has no case {number}")
        return bool(updated)
