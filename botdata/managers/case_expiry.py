"""Lifting expired cases (unban, untimeout, unjail) exactly once, from any number of processes.

A worker calls :meth:`CaseExpiry.claim_due` periodically, carries out each claimed case's
action, then calls :meth:`CaseExpiry.complete_expiry` (or :meth:`CaseExpiry.release` when the
action failed): the claim/lease cycle of :mod:`botdata.managers.claims`. A claim is a lease: if
the worker dies, the case is handed out again once the lease has run out, so the lease must
outlast the action (a worker that overruns it may find the case claimed by another). Claims and
completions are bookkeeping: ``updated_at`` stays.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from botdata.errors import CaseNotFoundError, InvalidExpiryError
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, aware, check_number, checked, excerpt, page, shifted
from botdata.managers.claims import ClaimQueue
from botdata.models import Case
from botdata.schemas import CaseSchema

#: How long a claim of :meth:`CaseExpiry.claim_due` keeps other claimers off a case.
DEFAULT_LEASE = timedelta(minutes=5)

#: Expired, still active cases not lifted yet.
EXPIRIES: ClaimQueue[CaseSchema] = ClaimQueue(
    Case,
    CaseSchema,
    due="active AND expires_at IS NOT NULL AND expires_at <= $1 AND expiry_handled_at IS NULL",
    order=("expires_at", "id"),
    pending={"expires_at__isnull": False, "expiry_handled_at__isnull": True},
    done="expiry_handled_at",
    column="expiry_claimed_until",
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
        return await EXPIRIES.claim(self.db.dialect, now, claimed_until, limit)

    @checked
    async def complete_expiry(self, guild_id: Snowflake, number: int) -> bool:
        """Record that the case's expiry was carried out; it is never claimed again.

        Returns True, or False when it was recorded before or the case does not expire.
        Raises :class:`~botdata.errors.CaseNotFoundError`,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        check_number(number, "case", CaseNotFoundError)
        now = self.db.clock.now()
        completed = await EXPIRIES.complete(now, guild_id=guild_id, number=number)
        return await self._found(guild_id, number, completed)

    @checked
    async def release(self, guild_id: Snowflake, number: int) -> bool:
        """Give up the claim on the case (its action failed): the next :meth:`claim_due` takes it.

        Returns True, or False when it was not claimed or is already handled. Raises
        :class:`~botdata.errors.CaseNotFoundError`,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        check_number(number, "case", CaseNotFoundError)
        released = await EXPIRIES.release(guild_id=guild_id, number=number)
        return await self._found(guild_id, number, released)

    @staticmethod
    async def _found(guild_id: int, number: int, changed: int) -> bool:
        """Whether the case changed; raises :class:`~botdata.errors.CaseNotFoundError` when it
        did not because it does not exist."""
        if not changed and not await Case.exists(guild_id=guild_id, number=number):
            raise CaseNotFoundError(f"guild {guild_id} has no case {number}")
        return bool(changed)
