"""Dynamic per-guild settings: a JSON value per (guild, module, key)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from botdata.models.base import AuditMixin, TextField, TimestampMixin

if TYPE_CHECKING:
    from botdata.models.guild import Guild


class GuildSetting(TimestampMixin, AuditMixin, Model):
    """One setting of one module in one guild."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="settings", on_delete=fields.CASCADE
    )
    guild_id: int
    module = TextField(100, min_length=1)
    key = TextField(100, min_length=1)
    value: fields.JSONField[Any] = fields.JSONField()

    class Meta:
        table = "guild_settings"
        unique_together = (("guild", "module", "key"),)
