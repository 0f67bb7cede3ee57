"""Moderation cases: ``db.cases``.

Numbers
    Each guild numbers its cases from 1, contiguous and never reused, however many tasks and
    processes create cases at once (see :mod:`botdata.managers.numbering`). The number, the case
    and its audit fields are written atomically: one statement on PostgreSQL, one transaction
    on SQLite.

Case types
    ``case_type`` is a built-in :class:`~botdata.models.CaseType` member, or a ``str``: the
    name of one of the guild's custom types (``db.case_types``). Built-in names are reserved, so
    ``"BAN"`` as a str is refused with :class:`~botdata.errors.BuiltinCaseTypeNameError`: pass
    ``CaseType.BAN``.

Cache
    The newest :data:`CACHED_CASES` cases of each member are cached as one entry per guild and
    member (``USER_CASES_TTL``), and kept in each process's hot layer too, so a warm
    :meth:`CaseManager.for_user` page is a dict lookup. ``create``, ``edit`` and ``void`` drop
    the entry in the shared cache and in this process's hot layer before they return, and in
    the other processes' hot layers as soon as the announcement reaches them (well under a
    second). Concurrent calls share their invalidations (``cache.invalidate`` groups them).

Expiry (:mod:`botdata.managers.case_expiry`) and member status (:meth:`CaseManager.is_jailed`
...) are described on those methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from botdata.errors import (
    CaseAlreadyVoidedError,
    CaseNotFoundError,
    CaseTypeNotFoundError,
    InvalidCaseTypeNameError,
)
from botdata.managers.case_expiry import CaseExpiry
from botdata.managers.case_rules import check_metadata, check_reason, check_roles, expiry
from botdata.managers.checks import Snowflake, check_number, checked, excerpt, page, snowflake
from botdata.managers.numbering import insert_numbered
from botdata.models import Case, CaseEdit, CaseType
from botdata.schemas import CaseEditSchema, CaseSchema, CustomCaseTypeSchema

if TYPE_CHECKING:
    from botdata.database import Database

#: Cache key name of a member's recent cases.
USER_CASES_KEY = "user_cases"
#: How many of a member's newest cases the cache holds.
CACHED_CASES = 100


class CaseManager(CaseExpiry):
    """Cases of every guild. Reached as ``db.cases``.

    The expiry methods (``claim_due``, ``complete_expiry``, ``release``) come from
    :class:`~botdata.managers.case_expiry.CaseExpiry`.
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._user_cases_key = self.guild_keys(USER_CASES_KEY)

    @checked
    async def create(
        self,
        guild_id: Snowflake,
        user_id: Snowflake,
        moderator_id: Snowflake,
        case_type: CaseType | str,
        reason: str,
        *,
        duration: timedelta | None = None,
        expires_at: datetime | None = None,
        user_roles: Iterable[int] = (),
        metadata: dict[str, Any] | None = None,
    ) -> CaseSchema:
        """Record a case with the guild's next number (the guild's row is made if missing).

        ``case_type``: a :class:`CaseType` or a custom type's name. ``duration`` or
        ``expires_at``: see :mod:`botdata.managers.case_rules`. ``user_roles``: the member's
        role ids (restored on unjail). ``created_by`` is the moderator.

        Returns the case. Raises, before writing anything:
        :class:`~botdata.errors.InvalidSnowflakeError` (an id or role),
        :class:`~botdata.errors.TooManyRolesError`,
        :class:`~botdata.errors.ReasonTooLongError`,
        :class:`~botdata.errors.UnstorableTextError` (text with a NUL or a surrogate, in the
        reason, the type's name or the metadata),
        :class:`~botdata.errors.CaseTypeNotFoundError` (no custom type of that name; also when
        it is deleted while the case is made), :class:`~botdata.errors.BuiltinCaseTypeNameError`,
        :class:`~botdata.errors.InvalidCaseTypeNameError`,
        :class:`~botdata.errors.DurationRequiredError`,
        :class:`~botdata.errors.DurationNotAllowedError`,
        :class:`~botdata.errors.InvalidExpiryError`,
        :class:`~botdata.errors.InvalidCaseMetadataError`.
        """
        check_reason(reason)
        roles = check_roles(user_roles)
        metadata = check_metadata(metadata)
        kind = await self._resolve_type(guild_id, case_type)
        builtin = kind if isinstance(kind, CaseType) else None
        custom = None if isinstance(kind, CaseType) else kind
        now = self.db.clock.now()
        expires = expiry(kind, duration, expires_at, now)
        values = {
            "type": builtin.value if builtin else None,
            "custom_type_id": custom.id if custom else None,
            "reason": reason,
            "user_id": user_id,
            "moderator_id": moderator_id,
            "user_roles": roles,
            "expires_at": expires,
            "metadata": metadata,
            "active": True,
            "created_by": moderator_id,
            "updated_by": moderator_id,
        }
        try:
            case = await insert_numbered(
                self.db.dialect, Case, "case_count", guild_id, values, now, CaseSchema
            )
        except IntegrityError:
            if custom is None:
                raise
            raise CaseTypeNotFoundError(f"case type {custom.name!r} was deleted") from None
        await self._forget_user(guild_id, user_id)
        return case

    async def get(self, guild_id: int, number: int) -> CaseSchema:
        """The guild's case ``number`` (voided ones too).

        Raises :class:`~botdata.errors.CaseNotFoundError` when there is none,
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        return CaseSchema.model_validate(await self._row(guild_id, number))

    @checked
    async def for_user(
        self, guild_id: Snowflake, user_id: Snowflake, *, limit: int = 25, before: int | None = None
    ) -> list[CaseSchema]:
        """The member's cases in the guild, newest first, voided ones included.

        ``before``: only cases numbered below it (the last number of the previous page; one
        above every number means no bound). Served from the cache when the member's cached
        recent cases cover the page (warm: from this process's hot layer, no I/O); the cases
        are then shared with other callers, so treat their ``user_roles`` and ``metadata`` as
        read-only. Returns at most ``limit`` cases. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidPageError`.
        """
        before = page(limit, before)

        async def load() -> list[CaseSchema]:
            return await self._query(guild_id, CACHED_CASES, None, user_id=user_id)

        key = self._user_cases_key(guild_id, user_id)
        recent = await self.cache.get_or_load(
            key, load, self.settings.USER_CASES_TTL, hot=True, model=CaseSchema
        )
        # A new list: the cached one is shared.
        newer = recent if before is None else [c for c in recent if c.number < before]
        hits = newer[:limit]
        if len(hits) == limit or len(recent) < CACHED_CASES:  # the cache holds the whole page
            return hits
        return await self._query(guild_id, limit, before, user_id=user_id)

    @checked
    async def search(
        self,
        guild_id: Snowflake,
        *,
        user_id: int | None = None,
        moderator_id: int | None = None,
        case_type: CaseType | str | None = None,
        active: bool | None = None,
        limit: int = 25,
        before: int | None = None,
    ) -> list[CaseSchema]:
        """The guild's cases matching every given filter, newest (highest number) first.

        ``case_type`` as in :meth:`create`; ``active``: False for voided cases only;
        ``before``: only cases numbered below it (keyset pagination; one above every number
        means no bound). Returns at most ``limit``
        cases. Raises :class:`~botdata.errors.InvalidSnowflakeError`,
        :class:`~botdata.errors.InvalidPageError`, and for ``case_type`` the errors of
        :meth:`create`.
        """
        before = page(limit, before)
        filters: dict[str, Any] = {}
        if user_id is not None:
            filters["user_id"] = snowflake(user_id, "user_id")
        if moderator_id is not None:
            filters["moderator_id"] = snowflake(moderator_id, "moderator_id")
        if active is not None:
            filters["active"] = bool(active)
        if case_type is not None:
            kind = await self._resolve_type(guild_id, case_type)
            if isinstance(kind, CaseType):
                filters["type"] = kind
            else:
                filters["custom_type_id"] = kind.id
        return await self._query(guild_id, limit, before, **filters)

    @checked
    async def edit(
        self, guild_id: Snowflake, number: int, *, reason: str, editor_id: int
    ) -> CaseSchema:
        """Change the case's reason, recording the old and new reason, the editor and the time
        in its history (one transaction). The same reason again changes nothing.

        Returns the case. Raises :class:`~botdata.errors.CaseNotFoundError`,
        :class:`~botdata.errors.ReasonTooLongError`,
        :class:`~botdata.errors.UnstorableTextError`,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        check_number(number, "case", CaseNotFoundError)
        snowflake(editor_id, "editor_id")
        check_reason(reason)
        now = self.db.clock.now()
        async with in_transaction() as conn:
            # Write first: the row lock (PostgreSQL) or write lock (SQLite) is held before the
            # old reason is read, so concurrent edits chain in the history.
            changed = await (
                Case.filter(guild_id=guild_id, number=number)
                .exclude(reason=reason)
                .using_db(conn)
                .update(updated_at=now, updated_by=editor_id)
            )
            case = await self._row(guild_id, number, conn)
            if changed:
                await CaseEdit.create(
                    case_id=case.id,
                    editor_id=editor_id,
                    old_reason=case.reason,
                    new_reason=reason,
                    using_db=conn,
                )
                await Case.filter(id=case.id).using_db(conn).update(reason=reason)
                case.reason = reason
        await self._forget_user(guild_id, case.user_id)
        return CaseSchema.model_validate(case)

    async def history(self, guild_id: int, number: int) -> list[CaseEditSchema]:
        """The case's reason changes, oldest first (empty if never edited).

        Raises :class:`~botdata.errors.CaseNotFoundError`,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        case = await self._row(guild_id, number)
        edits = await CaseEdit.filter(case_id=case.id).order_by("id")
        return [CaseEditSchema.model_validate(edit) for edit in edits]

    @checked
    async def void(
        self, guild_id: Snowflake, number: int, *, by: Snowflake, reason: str
    ) -> CaseSchema:
        """Void the case: it stays, inactive, with who voided it, when and why.

        A voided case no longer counts for :meth:`is_jailed` and the other status checks, nor
        for :meth:`claim_due`. Returns the case. Raises
        :class:`~botdata.errors.CaseNotFoundError`,
        :class:`~botdata.errors.CaseAlreadyVoidedError`,
        :class:`~botdata.errors.ReasonTooLongError`,
        :class:`~botdata.errors.UnstorableTextError`,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        check_number(number, "case", CaseNotFoundError)
        check_reason(reason, "void reason")
        now = self.db.clock.now()
        voided = await Case.filter(guild_id=guild_id, number=number, voided_at__isnull=True).update(
            active=False,
            voided_at=now,
            voided_by=by,
            void_reason=reason,
            updated_at=now,
            updated_by=by,
        )
        case = await self._row(guild_id, number)
        if not voided:
            raise CaseAlreadyVoidedError(f"case {number} of guild {guild_id} is already voided")
        await self._forget_user(guild_id, case.user_id)
        return CaseSchema.model_validate(case)

    # Member status -----------------------------------------------------------------------------
    # Decided by the member's latest active case among one pair of types: a later case of any
    # other type, and a voided case, change nothing. A timed jail whose expiry was carried out
    # (complete_expiry) is over; until then, even past expires_at, the member is jailed.

    async def is_jailed(self, guild_id: int, user_id: int) -> bool:
        """Whether the member is jailed (latest of JAIL/UNJAIL is a JAIL not lifted by expiry).

        Raises :class:`~botdata.errors.InvalidSnowflakeError`.
        """
        return await self._status(guild_id, user_id, CaseType.JAIL, CaseType.UNJAIL)

    async def is_snippet_banned(self, guild_id: int, user_id: int) -> bool:
        """Whether the member is banned from snippets (latest of SNIPPETBAN/SNIPPETUNBAN).

        Raises :class:`~botdata.errors.InvalidSnowflakeError`.
        """
        return await self._status(guild_id, user_id, CaseType.SNIPPETBAN, CaseType.SNIPPETUNBAN)

    async def is_poll_banned(self, guild_id: int, user_id: int) -> bool:
        """Whether the member is banned from polls (latest of POLLBAN/POLLUNBAN).

        Raises :class:`~botdata.errors.InvalidSnowflakeError`.
        """
        return await self._status(guild_id, user_id, CaseType.POLLBAN, CaseType.POLLUNBAN)

    # Helpers -----------------------------------------------------------------------------------

    async def _resolve_type(
        self, guild_id: int, case_type: object
    ) -> CaseType | CustomCaseTypeSchema:
        """The built-in type, or the guild's custom type of that name (raises
        :class:`~botdata.errors.CaseTypeNotFoundError` when there is none)."""
        if isinstance(case_type, CaseType):
            return case_type
        if isinstance(case_type, str):
            return await self.db.case_types.get(guild_id, case_type)
        raise InvalidCaseTypeNameError(
            f"case_type must be a CaseType or a str, not {excerpt(case_type)}"
        )

    @checked
    async def _row(
        self, guild_id: Snowflake, number: int, conn: BaseDBAsyncClient | None = None
    ) -> Case:
        """The case row, read on ``conn`` (a transaction) if given."""
        check_number(number, "case", CaseNotFoundError)
        case = await Case.filter(guild_id=guild_id, number=number).using_db(conn).first()
        if case is None:
            raise CaseNotFoundError(f"guild {guild_id} has no case {number}")
        return case

    async def _query(
        self, guild_id: int, limit: int, before: int | None, **filters: Any
    ) -> list[CaseSchema]:
        query = Case.filter(guild_id=guild_id, **filters)
        if before is not None:
            query = query.filter(number__lt=before)
        rows = await query.order_by("-number").limit(limit)
        return [CaseSchema.model_validate(row) for row in rows]

    @checked
    async def _status(
        self, guild_id: Snowflake, user_id: Snowflake, on: CaseType, off: CaseType
    ) -> bool:
        latest = (
            await Case.filter(guild_id=guild_id, user_id=user_id, active=True, type__in=[on, off])
            .order_by("-number")
            .first()
        )
        return latest is not None and latest.type == on and latest.expiry_handled_at is None

    async def _forget_user(self, guild_id: int, user_id: int) -> None:
        await self.cache.invalidate(self._user_cases_key(guild_id, user_id))
