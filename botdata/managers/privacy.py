"""Privacy requests: export and erase everything botdata holds about a user: ``db.privacy``.

Every way a row can concern a user is declared once, in :data:`REFERENCES`: a table, the
column (or Tortoise lookup path) holding the user's Discord id, and what erasure does to it.
Export and erasure both walk that list, and a test checks that every Discord-id column of every
model in ``botdata.models.__models__`` is either listed there or is a guild, channel, role, log
or message id, so a new model with a user column cannot be forgotten silently.

Export (:meth:`PrivacyManager.export_user`): a person's export holds their own records.

- Rows that are the user's own data or records about them (the references erasure deletes or
  keeps as moderation records about them) are exported whole, under ``tables``.
- Where the user only acted (``moderator_id`` of cases and notes, ``editor_id`` of case edits,
  and the audit columns ``created_by``/``updated_by``/``voided_by``/``deleted_by`` of rows that
  are other people's or the guild's data) the rows belong to others: ``actions`` lists only
  what identifies each (:data:`ACTION_FIELDS`: guild, table, case or note number, type) and
  the user's roles in it with their dates (``{"moderator_id": created, "updated_by": last
  change}``), never the other member's id, reason or note content.

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
- Mentions in the rows that stay are scrubbed: every text and JSON column of every table is
  searched for the user's id, and in the rows that stay (other members' data, the guild's,
  the kept moderation records) a mention ``<@id>`` or ``<@!id>`` or the bare id in text becomes
  :data:`PLACEHOLDER` (case reasons, void reasons, edit history, note contents, other authors'
  snippets, other members' reminders and AFK statuses, rule names, case type names shown...).
  In JSON (case metadata, a case's saved roles) the id as a number is dropped from lists and
  set to null in objects, and strings, keys included, are scrubbed like text.

What still holds the user's id after an erasure, and why:

- the Discord-id columns of rows that stay, as above: ``user_id`` of kept moderation records
  and ``target_id`` of member rules about them (their subject), ``moderator_id`` of cases and
  notes and ``editor_id`` of case edits where they acted (who took an action is part of the
  record);
- the text columns of :data:`KEPT_TEXT`: guild settings values, kept whole because they are
  the guild's configuration (a module's list of exempt or blocked members is a decision the
  guild made, like a ban: scrubbing could lift it; botdata cannot tell what a value means, and
  a registered settings model must keep validating it), and identifiers that are no text about
  anyone: snippet names and aliases, case type names, setting modules and keys (each unique in
  its guild: a scrubbed one could collide or break a command word), other dashboard users'
  account data and session token hashes.

Caches: after the erasure commits, the whole cache is cleared (``cache.clear()``). Erasures are
rare, and every cached value is a copy of database rows that can be reloaded, while a targeted
invalidation would have to know every manager's key layout and a missed key would keep serving
erased data. Hot layers of other processes drop their entries as ``clear()`` announces it.
When Redis does not answer, the clear is queued (applied before this process's next use of
Redis, retried in the background until it succeeds) and the summary says so
(``cache_cleared=False``): this process's reads never show the erased data, other processes'
may until the clear is applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from pydantic_core import to_jsonable_python
from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q, Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from botdata.errors import InvalidFlagError
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, checked, excerpt
from botdata.managers.sql import fetch
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
    __models__,
)
from botdata.schemas import AFKSchema, ErasureSummary, StarboardMessageSchema

M = TypeVar("M", bound=Model)


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
    #: The date of the user's action, in their export (KEEP and ANONYMISE references).
    when: str = "created_at"

    @property
    def table(self) -> str:
        """The table's name."""
        return self.model._meta.db_table

    def matching(self, user_id: int) -> Q:
        """The filter selecting the rows of ``model`` that reference ``user_id`` this way."""
        filters: dict[str, Any] = {self.lookup: user_id, **self.where}
        return Q(**filters)


#: The date of the change each audit column records.
_AUDIT_DATES = {
    "created_by": "created_at",
    "updated_by": "updated_at",
    "voided_by": "voided_at",
    "deleted_by": "deleted_at",
}


def _audit(model: type[Model], *columns: str) -> tuple[Reference, ...]:
    return tuple(
        Reference(model, column, Erase.ANONYMISE, when=_AUDIT_DATES[column]) for column in columns
    )


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

#: References to rows that are the user's own data or about them: exported whole.
_SUBJECT = frozenset({Erase.DELETE, Erase.MODERATION})

#: What identifies a user's action in a row of other people's or the guild's data, in their
#: export: ``{key: Tortoise lookup}`` per table, besides the table, the column naming the user
#: (``role``) and the date. Never another member's id or text.
ACTION_FIELDS: Mapping[str, Mapping[str, str]] = {
    "guild_configs": {"guild_id": "guild_id"},
    "guild_settings": {"guild_id": "guild_id", "module": "module", "key": "key"},
    "custom_case_types": {"guild_id": "guild_id", "name": "name"},
    "cases": {
        "guild_id": "guild_id",
        "number": "number",
        "type": "type",
        "custom_type_id": "custom_type_id",
    },
    "case_edits": {
        "guild_id": "case__guild_id",
        "number": "case__number",
        "type": "case__type",
        "custom_type_id": "case__custom_type_id",
    },
    "notes": {"guild_id": "guild_id", "number": "number"},
    "guild_permissions": {"guild_id": "guild_id", "id": "id", "type": "type"},
    "snippets": {"guild_id": "guild_id", "id": "id"},
}

#: What a mention of an erased user becomes in the text that stays.
PLACEHOLDER = "[erased user]"

#: Text and JSON columns an erasure leaves as they are, per table (the module docstring says
#: why); every other text and JSON column is scrubbed of the user's id.
KEPT_TEXT: Mapping[str, frozenset[str]] = {
    "guild_settings": frozenset({"module", "key", "value"}),
    "snippet_names": frozenset({"name", "key"}),
    "custom_case_types": frozenset({"name"}),
    "web_users": frozenset({"username", "avatar", "email"}),
    "web_sessions": frozenset({"token_hash", "ip_address"}),
}


class PrivacyManager(Manager):
    """Data-subject requests: export and erasure. Reached as ``db.privacy``."""

    @checked
    async def export_user(self, user_id: Snowflake) -> dict[str, Any]:
        """Everything botdata holds about the user, as JSON-serialisable data.

        Returns ``{"user_id", "exported_at", "tables": {table: [row, ...]}, "actions":
        [action, ...]}``, as the module docstring describes. ``tables`` has a key for every
        table holding the user's own data or records about them (an empty list when nothing
        matches), rows as ``{column: value}`` ordered by primary key; soft-deleted rows are
        included, secrets (session token hashes) are not, nor other users' rows (stars others
        gave to the user's messages). ``actions`` has one entry per row of other people's or
        the guild's data naming the user, oldest first: ``{"table", **ACTION_FIELDS, "roles":
        {column: date}}`` (each column naming the user, e.g. ``moderator_id``, with the date
        of what it records). Times are ISO 8601 strings. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        tables: dict[str, list[dict[str, Any]]] = {}
        whole: dict[type[Model], set[Any]] = {}
        subject = (ref for ref in REFERENCES if ref.export and ref.erase in _SUBJECT)
        for model, references in _by_model(subject).items():
            query = Q(*(ref.matching(user_id) for ref in references), join_type=Q.OR)
            rows = await _all(model).filter(query).order_by(model._meta.db_pk_column).values()
            hidden = SECRET_COLUMNS.get(model._meta.db_table, frozenset())
            tables[model._meta.db_table] = [
                {key: value for key, value in row.items() if key not in hidden} for row in rows
            ]
            whole[model] = {row[model._meta.pk_attr] for row in rows}
        actions: dict[tuple[str, Any], dict[str, Any]] = {}
        for ref in REFERENCES:
            if ref.erase in _SUBJECT:
                continue
            found = (
                await _all(ref.model)
                .filter(ref.matching(user_id))
                .values(_key=ref.model._meta.pk_attr, _date=ref.when, **ACTION_FIELDS[ref.table])
            )
            for row in found:
                key, date = row.pop("_key"), row.pop("_date")
                if key not in whole.get(ref.model, ()):
                    action = actions.setdefault((ref.table, key), {"table": ref.table, **row})
                    action.setdefault("roles", {})[ref.lookup] = date
        return {
            "user_id": user_id,
            "exported_at": self.db.clock.now().isoformat(),
            "tables": to_jsonable_python(tables),
            "actions": to_jsonable_python(sorted(actions.values(), key=_first_date)),
        }

    @checked
    async def erase_user(
        self, user_id: Snowflake, *, keep_moderation_records: bool = True
    ) -> ErasureSummary:
        """Erase the user's data in one transaction, as the module docstring describes: delete
        their own data, keep (or, with ``keep_moderation_records=False``, delete) moderation
        records about them, keep records where they were the moderator, set audit columns that
        point at them to NULL, scrub their id from the text and JSON of the rows that stay
        (but :data:`KEPT_TEXT`). Then clear the cache.

        Returns the :class:`~botdata.schemas.ErasureSummary`: rows deleted, rows anonymised and
        rows kept (still naming the user) for every table of :data:`REFERENCES` (0 when none;
        scrubbed rows count as anonymised, in any table), the AFK statuses deleted (the bot
        should give the nicknames back),
        the user's starred messages whose starboard copies the bot should delete, and whether
        the cache is cleared already or the clear is still queued (Redis did not answer). Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id and
        :class:`~botdata.errors.InvalidFlagError` when ``keep_moderation_records`` is not a bool.
        Nothing is changed when it raises.
        """
        if not isinstance(keep_moderation_records, bool):
            raise InvalidFlagError(
                f"keep_moderation_records must be a bool, not {excerpt(keep_moderation_records)}"
            )
        deleting = {Erase.DELETE} | (set() if keep_moderation_records else {Erase.MODERATION})
        tables = list(dict.fromkeys(ref.table for ref in REFERENCES))
        deleted = dict.fromkeys(tables, 0)
        anonymised: dict[str, set[Any]] = {table: set() for table in tables}
        kept = dict.fromkeys(tables, 0)
        now = self.db.clock.now()
        async with in_transaction() as conn:
            await _uncount_stars(conn, user_id, now)  # a write first: SQLite locks at once
            copies = await _starboard_copies(conn, user_id)
            afk = [
                AFKSchema.model_validate(row)
                for row in await AFK.filter(member_id=user_id).order_by("id").using_db(conn)
            ]
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
            for table, rows in (await _scrub(conn, self.db.dialect, user_id, now)).items():
                anonymised.setdefault(table, set()).update(rows)
            remaining = (ref for ref in REFERENCES if ref.erase in {Erase.KEEP, Erase.MODERATION})
            for model, refs in _by_model(remaining).items():
                query = Q(*(ref.matching(user_id) for ref in refs), join_type=Q.OR)
                kept[model._meta.db_table] = await _all(model, conn).filter(query).count()
        cache_cleared = await self.cache.clear()
        return ErasureSummary(
            user_id=user_id,
            deleted=deleted,
            anonymised={table: len(rows) for table, rows in anonymised.items()},
            kept=kept,
            starboard_copies=copies,
            afk_statuses=afk,
            cache_cleared=cache_cleared,
        )


def _not_null(column: str) -> dict[str, Any]:
    """The filter keyword selecting rows whose ``column`` is set."""
    return {f"{column}__isnull": False}


def _all(model: type[M], conn: BaseDBAsyncClient | None = None) -> QuerySet[M]:
    """Every row of ``model``, soft-deleted ones included (the default manager hides them)."""
    query = QuerySet(model)
    return query if conn is None else query.using_db(conn)


def _first_date(action: dict[str, Any]) -> tuple[bool, datetime | None]:
    """Sorts actions by their earliest date, those without one last."""
    dates = [date for date in action["roles"].values() if date is not None]
    return not dates, min(dates, default=None)


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
    await (
        StarboardMessage.filter(id__in=Subquery(starred))
        .using_db(conn)
        .update(stars=F("stars") - 1, updated_at=now)
    )


async def _set_null(
    conn: BaseDBAsyncClient, ref: Reference, user_id: int, columns: tuple[str, ...], now: datetime
) -> set[Any]:
    """Set ``columns`` to NULL in the rows ``ref`` matches that have a value in one of them;
    the primary keys of the rows changed."""
    model = ref.model
    query = _all(model, conn).filter(
        ref.matching(user_id),
        Q(*(Q(**_not_null(column)) for column in columns), join_type=Q.OR),
    )
    keys = set(await query.values_list(model._meta.db_pk_column, flat=True))
    if keys:
        changes: dict[str, Any] = dict.fromkeys(columns)
        if "updated_at" in model._meta.fields_map:
            changes["updated_at"] = now
        await (
            _all(model, conn).filter(**{f"{model._meta.db_pk_column}__in": keys}).update(**changes)
        )
    return keys


def _text_columns(model: type[Model]) -> dict[str, str]:
    """``{column: field name}`` of the model's text and JSON columns (enums are not text)."""
    return {
        column: name
        for name, column in model._meta.fields_db_projection.items()
        if isinstance(model._meta.fields_map[name], (fields.CharField, fields.JSONField))
        and not isinstance(model._meta.fields_map[name], fields.data.CharEnumFieldInstance)
    }


def _mention(user_id: int) -> re.Pattern[str]:
    """Matches a mention of the user (``<@id>``, ``<@!id>``) or their bare id in text."""
    return re.compile(rf"<@!?{user_id}>|(?<![0-9]){user_id}(?![0-9])")


def _scrub_json(value: Any, user_id: int, mention: re.Pattern[str]) -> Any:
    """``value`` without the user's id: dropped from lists, None elsewhere as a number,
    replaced by :data:`PLACEHOLDER` in strings (object keys too; of two keys that become the
    same, the later one's value stays)."""
    if isinstance(value, dict):
        return {
            mention.sub(PLACEHOLDER, key): _scrub_json(item, user_id, mention)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub_json(item, user_id, mention) for item in value if not _is_id(item, user_id)]
    if isinstance(value, str):
        return mention.sub(PLACEHOLDER, value)
    return None if _is_id(value, user_id) else value


def _is_id(value: Any, user_id: int) -> bool:
    return type(value) is int and value == user_id


async def _scrub(
    conn: BaseDBAsyncClient, dialect: str, user_id: int, now: datetime
) -> dict[str, set[Any]]:
    """Scrub the user's id from every text and JSON column but :data:`KEPT_TEXT`, in every row
    still there; the primary keys of the rows changed, per table.

    One query per table finds the rows (``LIKE`` on the columns as text); each changed row is
    written back with its scrubbed values (and ``updated_at``).
    """
    mention = _mention(user_id)
    changed: dict[str, set[Any]] = {}
    for model in __models__:
        meta = model._meta
        kept = KEPT_TEXT.get(meta.db_table, frozenset())
        columns = {c: n for c, n in _text_columns(model).items() if c not in kept}
        if not columns:
            continue
        listed = ", ".join(f'"{column}"' for column in columns)
        found = " OR ".join(f'CAST("{column}" AS TEXT) LIKE $1' for column in columns)
        rows = await fetch(
            conn,
            dialect,
            f'SELECT "{meta.db_pk_column}", {listed} FROM "{meta.db_table}" WHERE {found}',
            [f"%{user_id}%"],
        )
        for row in rows:
            values: dict[str, Any] = {}
            for column, name in columns.items():
                value = row[column]
                if isinstance(meta.fields_map[name], fields.JSONField):
                    decoded = json.loads(value) if isinstance(value, str) else value
                    scrubbed = _scrub_json(decoded, user_id, mention)
                    if scrubbed != decoded:
                        values[name] = json.dumps(scrubbed)
                elif value is not None and mention.sub(PLACEHOLDER, value) != value:
                    values[name] = mention.sub(PLACEHOLDER, value)
            if not values:
                continue  # the digits were part of a longer number
            if "updated_at" in meta.fields_map:
                values["updated_at"] = now
            key = row[meta.db_pk_column]
            await _all(model, conn).filter(**{meta.pk_attr: key}).update(**values)
            changed.setdefault(meta.db_table, set()).add(key)
    return changed
