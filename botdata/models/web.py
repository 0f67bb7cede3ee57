"""The web dashboard: users (from Discord OAuth), their sessions and the guilds they may manage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from botdata.models.base import CheckedIntField, SnowflakePKField, TextField, TimestampMixin

if TYPE_CHECKING:
    from botdata.models.guild import Guild


class WebUser(TimestampMixin, Model):
    """A dashboard user; ``id`` is their Discord user id."""

    id = SnowflakePKField()
    username = TextField(100, min_length=1)
    avatar = TextField(200, null=True)
    email = TextField(255, null=True)
    last_login_at = fields.DatetimeField(null=True)
    active = fields.BooleanField(default=True, db_default=True)

    sessions: fields.ReverseRelation[WebSession]
    guild_permissions: fields.ReverseRelation[WebGuildPermission]

    class Meta:
        table = "web_users"


class WebSession(TimestampMixin, Model):
    """A login session. Only the SHA-256 of the token is stored, never the token."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[WebUser] = fields.ForeignKeyField(
        "models.WebUser", related_name="sessions", on_delete=fields.CASCADE
    )
    user_id: int
    token_hash = TextField(64, min_length=64, unique=True)
    expires_at = fields.DatetimeField()
    ip_address = TextField(45, null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "web_sessions"
        indexes = (Index(fields=("expires_at",)),)


class WebGuildPermission(TimestampMixin, Model):
    """A web user may manage a guild's settings at a permission level (0..7)."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[WebUser] = fields.ForeignKeyField(
        "models.WebUser", related_name="guild_permissions", on_delete=fields.CASCADE
    )
    user_id: int
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="web_permissions", on_delete=fields.CASCADE
    )
    guild_id: int
    level = CheckedIntField(check="{col} BETWEEN 0 AND 7", default=0)

    class Meta:
        table = "web_guild_permissions"
        unique_together = (("user", "guild"),)
