"""Privacy requests: export and erase everything botdata holds about a user: ``db.privacy``.

Every way a row can concern a user is declared once, in :data:`REFERENCES`: a table, the
column (or Tortoise lookup path) holding the user's Discord id, and what erasure does to it.
Export and erasure both walk that list, and a test checks that every Discord-id column of every
model in ``botdata.models.__models__`` is either listed there or is a guild, channel, role, log
or message id, so a new model with a user column cannot be forgotten silently.

Erasure policy (:meth:`PrivacyManager.erase_user`, one transaction):

- The user's own data is deleted: reminders, AFK status, levels, snippets they authored (their
  names and aliases with them: the content is text they wrote), their starred-message entries
  (with everyone's stars on them), the stars they gave (the counts of those messages go down by
  one), their dashboard account, sessions and dashboard guild permissions.
- Moderation records *about* the user (cases and their edit history, notes, soft-deleted ones
  included, and access rules targeting them as a member) are kept by default: the guild has a
  legitimate interest in its sanctions (a ban must survive a deletion request, or erasure would
  lift it), and a record without its subject is useless, so ``user_id`` stays. Free text that is
  the user's own personal data in those rows is removed (a rule's ``target_name``: their name).
  With ``keep_moderation_records=False`` these rows are deleted too.
- Where the user acted as a moderator (``moderator_id`` of cases and notes, ``editor_id`` of case
  edits) the rows are other members' moderation records: they are kept unchanged (the columns
  are required: who took an action is part of the record).
- Audit columns pointing at the user (``created_by``, ``updated_by``, ``deleted_by``,
  ``voided_by``) are set to NULL: the rows are other people's or the guild's, only the pointer
  to the user goes.

Caches: after the erasure commits, the whole cache is cleared (``cache.clear()``). Erasures are
rare, and every cached value is a copy of database rows that can be reloaded, while a targeted
invalidation would have to know every manager's key layout and a missed key would keep serving
erased data. Hot layers of other processes drop their entries as ``clear()`` announces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic_core import to_jsonable_python
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q, Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from botdata.errors import InvalidFlagError
from botdata.managers.base import Manager
from botdata.managers.checks import snowflake
from botdata.models import (
    AFK,
    Case,
    CaseEdit,
    CustomCaseType,
    GuildConfig,
    GuildPermission,
    GuildSetting,
    Levels,
    Note,
    PermissionType,
    Reminder,
    Snippet,
    SnippetName,
    StarboardMessage,
    StarboardStar,
    WebGuildPermission,
    WebSession,
    WebUser,
)
from botdata.schemas import ErasureSummary, StarboardMessageSchema


class Erase(str, Enum):
    """What erasing a user does to the rows of one :class:`Reference`."""

    DELETE = "delete"  # the user's own data: the row goes
    MODERATION = "moderation"  # a moderation record about the user: kept unless asked otherwise
    KEEP = "keep"  # someone else's moderation record in which the user acted: kept as is
    ANONYMISE = "anonymise"  # an audit column: set to NULL, the row stays


@dataclass(frozen=True)
class Reference:
    """One way rows of ``model`` concern a user: ``lookup`` (a column, or a Tortoise path
    through foreign keys) holds the user's id, with ``where`` as extra conditions."""

    model: type[Model]
    lookup: str
    erase: Erase
    where: Mapping[str, Any] = field(default_factory=dict)
    #: False for rows that concern the user but are other users' data (not exported).
    export: bool = True
    #: Free-text columns holding the user's personal data, set to NULL in rows that are kept.
    scrub: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        """The table's name."""
        return self.model._meta.db_table

    def matching(self, user_id: int) -> Q:
        """The filter selecting the rows of ``model`` that reference ``user_id`` this way."""
        return Q(**{self.lookup: user_id}, **self.where)


def _audit(model: type[Model], *columns: str) -> tuple[Reference, ...]:
    return tuple(Reference(model, column, Erase.ANONYMISE) for column in columns)


_AUDIT = ("created_by", "updated_by")

#: Every way a row concerns a user. Erasure deletes in this order: children before parents.
REFERENCES: tuple[Reference, ...] = (
    *_audit(GuildConfig, *_AUDIT),
    *_audit(GuildSetting, *_AUDIT),
    *_audit(CustomCaseType, *_AUDIT),
    Reference(CaseEdit, "case__user_id", Erase.MODERATION),
    Reference(CaseEdit, "editor_id", Erase.KEEP),
    Reference(Case, "user_id", Erase.MODERATION),
    Reference(Case, "moderator_id", Erase.KEEP),
    *_audit(Case, *_AUDIT, "voided_by"),
    Reference(Note, "user_id", Erase.MODERATION),
    Reference(Note, "moderator_id", Erase.KEEP),
    *_audit(Note, *_AUDIT, "deleted_by"),
    Reference(
        GuildPermission,
        "target_id",
        Erase.MODERATION,
        where={"type": PermissionType.MEMBER},
        scrub=("target_name",),
    ),
    *_audit(GuildPermission, *_AUDIT),
    Reference(SnippetName, "snippet__author_id", Erase.DELETE),
    Reference(Snippet, "author_id", Erase.DELETE),
    *_audit(Snippet, *_AUDIT),
    Reference(Reminder, "user_id", Erase.DELETE),
    Reference(AFK, "member_id", Erase.DELETE),
    Reference(Levels, "member_id", Erase.DELETE),
    Reference(StarboardStar, "user_id", Erase.DELETE),
    Reference(StarboardStar, "message__author_id", Erase.DELETE, export=False),
    Reference(StarboardMessage, "author_id", Erase.DELETE),
    Reference(WebSession, "user_id", Erase.DELETE),
    Reference(WebGuildPermission, "user_id", Erase.DELETE),
    Reference(WebUser, "id", Erase.DELETE),
)

#: Columns never exported: secrets, even hashed.
SECRET_COLUMNS: Mapping[str, frozenset[str]] = {"web_sessions": frozenset({"token_hash"})}


class PrivacyManager(Manager):
    """Data-subject requests: export and erasure. Reached as ``db.privacy``."""

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything botdata holds about the user, as JSON-serialisable data.

        Returns ``{"user_id", "exported_at", "tables": {table: [row, ...]}}`` with a key for
        every table of :data:`REFERENCES` (an empty list when nothing matches), rows as
        ``{column: value}`` ordered by primary key, times as ISO 8601 strings. Soft-deleted rows
        are included; secrets (session token hashes) are not; other users' rows are not (stars
        others gave to the user's messages). Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        snowflake(user_id, "user_id")
        tables: dict[str, list[dict[str, Any]]] = {}
        for model, references in _by_model(ref for ref in REFERENCES if ref.export).items():
            query = Q(*(ref.matching(user_id) for ref in references), join_type=Q.OR)
            rows = await _all(model).filter(query).order_by(model._meta.db_pk_column).values()
            hidden = SECRET_COLUMNS.get(model._meta.db_table, frozenset())
            tables[model._meta.db_table] = [
                {key: value for key, value in row.items() if key not in hidden} for row in rows
            ]
        return {
            "user_id": user_id,
            "exported_at": datetime.now(timezone.utc).isoformat(),
            "tables": to_jsonable_python(tables),
        }

    async def erase_user(
        self, user_id: int, *, keep_moderation_records: bool = True
    ) -> ErasureSummary:
        """Erase the user's data in one transaction, as the module docstring describes: delete
        their own data, keep (or, with ``keep_moderation_records=False``, delete) moderation
        records about them, keep records where they were the moderator, set audit columns that
        point at them to NULL. Then clear the cache.

        Returns the :class:`~botdata.schemas.ErasureSummary`: rows deleted, rows anonymised and
        rows kept (still naming the user) for every table of :data:`REFERENCES` (0 when none),
        and the user's starred messages whose starboard copies the bot should delete. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id and
        :class:`~botdata.errors.InvalidFlagError` when ``keep_moderation_records`` is not a bool.
        Nothing is changed when it raises.
        """
        snowflake(user_id, "user_id")
        if not isinstance(keep_moderation_records, bool):
            raise InvalidFlagError(
                f"keep_moderation_records must be a bool, not {keep_moderation_records!r}"
            )
        deleting = {Erase.DELETE} | (set() if keep_moderation_records else {Erase.MODERATION})
        tables = list(dict.fromkeys(ref.table for ref in REFERENCES))
        deleted = dict.fromkeys(tables, 0)
        anonymised: dict[str, set[Any]] = {table: set() for table in tables}
        kept = dict.fromkeys(tables, 0)
        now = datetime.now(timezone.utc)
        async with in_transaction() as conn:
            await _uncount_stars(conn, user_id, now)  # a write first: SQLite locks at once
            copies = await _starboard_copies(conn, user_id)
            for ref in REFERENCES:
                if ref.erase in deleting:
                    removed = await _all(ref.model, conn).filter(ref.matching(user_id)).delete()
                    deleted[ref.table] += removed
            for ref in REFERENCES:
                if ref.erase is Erase.ANONYMISE:
                    touched = await _set_null(conn, ref, user_id, (ref.lookup,), now)
                elif ref.scrub and ref.erase not in deleting:
                    touched = await _set_null(conn, ref, user_id, ref.scrub, now)
                else:
                    continue
                anonymised[ref.table].update(touched)
            remaining = (ref for ref in REFERENCES if ref.erase in {Erase.KEEP, Erase.MODERATION})
            for model, refs in _by_model(remaining).items():
                query = Q(*(ref.matching(user_id) for ref in refs), join_type=Q.OR)
                kept[model._meta.db_table] = await _all(model, conn).filter(query).count()
        await self.cache.clear()
        return ErasureSummary(
            user_id=user_id,
            deleted=deleted,
            anonymised={table: len(rows) for table, rows in anonymised.items()},
            kept=kept,
            starboard_copies=copies,
        )


def _all(model: type[Model], conn: BaseDBAsyncClient | None = None) -> QuerySet:
    """Every row of ``model``, soft-deleted ones included (the default manager hides them)."""
    query = QuerySet(model)
    return query if conn is None else query.using_db(conn)


def _by_model(references: Iterable[Reference]) -> dict[type[Model], list[Reference]]:
    grouped: dict[type[Model], list[Reference]] = {}
    for ref in references:
        grouped.setdefault(ref.model, []).append(ref)
    return grouped


async def _starboard_copies(conn: BaseDBAsyncClient, user_id: int) -> list[StarboardMessageSchema]:
    rows = await StarboardMessage.filter(
        author_id=user_id, starboard_message_id__isnull=False
    ).using_db(conn)
    return [StarboardMessageSchema.model_validate(row) for row in rows]


async def _uncount_stars(conn: BaseDBAsyncClient, user_id: int, now: datetime) -> None:
    """Take the user's stars off the counts of the messages they starred (one each)."""
    starred = StarboardStar.filter(user_id=user_id).values("message_id")
    await StarboardMessage.filter(id__in=Subquery(starred)).using_db(conn).update(
        stars=F("stars") - 1, updated_at=now
    )


async def _set_null(
    conn: BaseDBAsyncClient, ref: Reference, user_id: int, columns: tuple[str, ...], now: datetime
) -> set[Any]:
    """Set ``columns`` to NULL in the rows ``ref`` matches that have a value in one of them;
    the primary keys of the rows changed."""
    model = ref.model
    query = _all(model, conn).filter(
        ref.matching(user_id),
        Q(*(Q(**{f"{column}__isnull": False}) for column in columns), join_type=Q.OR),
    )
    keys = set(await query.values_list(model._meta.db_pk_column, flat=True))
    if keys:
        changes: dict[str, Any] = dict.fromkeys(columns)
        if "updated_at" in model._meta.fields_map:
            changes["updated_at"] = now
        await _all(model, conn).filter(**{f"{model._meta.db_pk_column}__in": keys}).update(
            **changes
        )
    return keys
