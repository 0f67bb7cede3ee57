"""Dynamic per-guild settings: a JSON value per (guild, module, key)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from botdata.models.base import AuditMixin, TextField, TimestampMixin


class GuildSetting(TimestampMixin, AuditMixin, Model):
    """One setting of one module in one guild."""

    id = fields.BigIntField(primary_key=True)
    guild = fields.ForeignKeyField(
        "models.Guild", related_name="settings", on_delete=fields.CASCADE
    )
    module = TextField(100, min_length=1)
    key = TextField(100, min_length=1)
    value = fields.JSONField()

    class Meta:
        table = "guild_settings"
        unique_together = (("guild", "module", "key"),)
