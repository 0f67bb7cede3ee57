"""Access rules: allow, deny or ignore commands and modules per member, role, channel, category."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from botdata.models.base import AuditMixin, SnowflakeField, TextField, TimestampMixin

if TYPE_CHECKING:
    from botdata.models.guild import Guild


class PermissionType(str, Enum):
    """What ``target_id`` names."""

    MEMBER = "member"
    CHANNEL = "channel"
    CATEGORY = "category"
    ROLE = "role"
    COMMAND = "command"
    MODULE = "module"


class AccessType(str, Enum):
    """What a rule does."""

    WHITELIST = "whitelist"
    BLACKLIST = "blacklist"
    IGNORE = "ignore"


class GuildPermission(TimestampMixin, AuditMixin, Model):
    """One rule: ``access`` of ``command`` or ``module`` for the target, optionally until a time."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="permissions", on_delete=fields.CASCADE
    )
    guild_id: int
    type = fields.CharEnumField(PermissionType, max_length=10, description="Kind of target")
    access = fields.CharEnumField(AccessType, max_length=10, description="What the rule does")
    target_id = SnowflakeField()
    target_name = TextField(100, null=True)
    command = TextField(100, null=True)
    module = TextField(100, null=True)
    expires_at = fields.DatetimeField(null=True)
    active = fields.BooleanField(default=True, db_default=True)

    class Meta:
        table = "guild_permissions"
        indexes = (
            Index(fields=("guild_id", "type")),
            Index(fields=("target_id", "type")),
        )
