"""Content: snippets (with their names and aliases) and reminders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from botdata.models.base import (
    AuditMixin,
    CheckedIntField,
    SnowflakeField,
    TextField,
    TimestampMixin,
)

if TYPE_CHECKING:
    from botdata.models.guild import Guild


class Snippet(TimestampMixin, AuditMixin, Model):
    """A named piece of text members can call up; its name and aliases are SnippetName rows."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="snippets", on_delete=fields.CASCADE
    )
    guild_id: int
    content = TextField(4000, min_length=1)
    author_id = SnowflakeField()
    uses = CheckedIntField(check="{col} >= 0", default=0, db_default=0)
    locked = fields.BooleanField(default=False, db_default=False)

    names: fields.ReverseRelation[SnippetName]

    class Meta:
        table = "snippets"


class SnippetName(Model):
    """A snippet's name or one of its aliases.

    Names and aliases share this table so that the database keeps them unique per guild together,
    ignoring case: ``key`` is the lower-cased ``name`` (names are ASCII, so SQL ``lower()`` agrees).
    """

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="snippet_names", on_delete=fields.CASCADE
    )
    guild_id: int
    snippet: fields.ForeignKeyRelation[Snippet] = fields.ForeignKeyField(
        "models.Snippet", related_name="names", on_delete=fields.CASCADE
    )
    snippet_id: int
    name = TextField(100, min_length=1)
    key = TextField(100, min_length=1, also='{col} = lower("name")')
    is_alias = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "snippet_names"
        unique_together = (("guild", "key"),)


class Reminder(TimestampMixin, Model):
    """A message to deliver to a member at ``due_at``."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="reminders", on_delete=fields.CASCADE
    )
    guild_id: int
    user_id = SnowflakeField()
    channel_id = SnowflakeField()
    content = TextField(2000, min_length=1)
    due_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    # Failed deliveries so far.
    attempts = CheckedIntField(check="{col} >= 0", default=0, db_default=0)
    # While set and in the future, one dispatcher is delivering it.
    claimed_until = fields.DatetimeField(null=True)

    class Meta:
        table = "reminders"
        indexes = (
            Index(fields=("sent_at", "due_at")),
            Index(fields=("guild_id", "user_id")),
        )
