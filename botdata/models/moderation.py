"""Moderation: cases (with their edit history), custom case types and notes."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from botdata.models.base import (
    AuditMixin,
    CheckedIntField,
    SnowflakeField,
    SoftDeleteManager,
    SoftDeleteModel,
    TextField,
    TimestampMixin,
)

if TYPE_CHECKING:
    from botdata.models.guild import Guild


class CaseType(str, Enum):
    """Built-in moderation actions."""

    BAN = "BAN"
    UNBAN = "UNBAN"
    HACKBAN = "HACKBAN"
    TEMPBAN = "TEMPBAN"
    KICK = "KICK"
    TIMEOUT = "TIMEOUT"
    UNTIMEOUT = "UNTIMEOUT"
    WARN = "WARN"
    JAIL = "JAIL"
    UNJAIL = "UNJAIL"
    SNIPPETBAN = "SNIPPETBAN"
    SNIPPETUNBAN = "SNIPPETUNBAN"
    POLLBAN = "POLLBAN"
    POLLUNBAN = "POLLUNBAN"


class CustomCaseType(TimestampMixin, AuditMixin, Model):
    """A guild's own kind of case, next to the built-in :class:`CaseType` values."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="case_types", on_delete=fields.CASCADE
    )
    guild_id: int
    name = TextField(50, min_length=1)
    display_name = TextField(100, min_length=1)
    description = TextField(500, null=True)
    severity = CheckedIntField(check="{col} BETWEEN 1 AND 10", default=1)
    requires_duration = fields.BooleanField(default=False)

    cases: fields.ReverseRelation[Case]

    class Meta:
        table = "custom_case_types"
        unique_together = (("guild", "name"),)


class Case(TimestampMixin, AuditMixin, Model):
    """A moderation action against a member, numbered per guild from 1.

    Exactly one of ``type`` (built-in) and ``custom_type`` is set. A voided case stays in the
    table with ``active = False``.
    """

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="cases", on_delete=fields.CASCADE
    )
    guild_id: int
    number = CheckedIntField(check="{col} >= 1")
    type = fields.CharEnumField(
        CaseType, max_length=20, null=True, description="Built-in case type"
    )
    custom_type: fields.ForeignKeyNullableRelation[CustomCaseType] = fields.ForeignKeyField(
        "models.CustomCaseType",
        related_name="cases",
        null=True,
        on_delete=fields.NO_ACTION,
    )
    custom_type_id: int | None
    reason = TextField(2000)
    user_id = SnowflakeField()
    moderator_id = SnowflakeField()
    # Role ids the member had when the case was made (restored on unjail).
    user_roles: fields.JSONField[list[int]] = fields.JSONField(default=list)
    expires_at = fields.DatetimeField(null=True)
    metadata: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    active = fields.BooleanField(default=True, db_default=True)

    voided_at = fields.DatetimeField(null=True)
    voided_by = SnowflakeField(null=True)
    void_reason = TextField(2000, null=True)

    # While set and in the future, one process is lifting this case's expiry.
    expiry_claimed_until = fields.DatetimeField(null=True)
    # When the expiry (unban, untimeout, unjail) was carried out.
    expiry_handled_at = fields.DatetimeField(null=True)

    edits: fields.ReverseRelation[CaseEdit]

    class Meta:
        table = "cases"
        unique_together = (("guild", "number"),)
        indexes = (
            Index(fields=("guild_id", "user_id")),
            Index(fields=("guild_id", "moderator_id")),
            Index(fields=("guild_id", "created_at")),
            Index(fields=("expires_at",)),
        )


class CaseEdit(Model):
    """One change of a case's reason: who, when, from what to what."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="edits", on_delete=fields.CASCADE
    )
    case_id: int
    editor_id = SnowflakeField()
    old_reason = TextField(2000)
    new_reason = TextField(2000)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "case_edits"


class Note(TimestampMixin, AuditMixin, SoftDeleteModel):
    """A moderator's note about a member, numbered per guild from 1."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="notes", on_delete=fields.CASCADE
    )
    guild_id: int
    number = CheckedIntField(check="{col} >= 1")
    user_id = SnowflakeField()
    moderator_id = SnowflakeField()
    content = TextField(2000, min_length=1)

    class Meta:
        table = "notes"
        manager = SoftDeleteManager()
        unique_together = (("guild", "number"),)
        indexes = (Index(fields=("guild_id", "user_id")),)
