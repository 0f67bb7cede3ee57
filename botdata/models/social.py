"""Social features: AFK, levels and the starboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from botdata.models.base import (
    CheckedBigIntField,
    CheckedIntField,
    SnowflakeField,
    TextField,
    TimestampMixin,
)

if TYPE_CHECKING:
    from botdata.models.guild import Guild


class AFK(TimestampMixin, Model):
    """A member who is away; at most one row per (guild, member)."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="afk", on_delete=fields.CASCADE
    )
    guild_id: int
    member_id = SnowflakeField()
    nickname = TextField(100)
    reason = TextField(500)
    since = fields.DatetimeField(auto_now_add=True)
    until = fields.DatetimeField(null=True)
    # Set by a moderator: talking does not clear it.
    enforced = fields.BooleanField(default=False)
    # Never expires.
    permanent = fields.BooleanField(default=False)
    # While set and in the future, one process is ending this status (it expired).
    claimed_until = fields.DatetimeField(null=True)

    class Meta:
        table = "afk"
        unique_together = (("guild", "member_id"),)
        indexes = (Index(fields=("until",)),)


class Levels(TimestampMixin, Model):
    """A member's XP and level in one guild; at most one row per (guild, member)."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="levels", on_delete=fields.CASCADE
    )
    guild_id: int
    member_id = SnowflakeField()
    xp = CheckedBigIntField(check="{col} >= 0", default=0, db_default=0)
    level = CheckedIntField(check="{col} >= 0", default=0, db_default=0)
    blacklisted = fields.BooleanField(default=False, db_default=False)
    last_message_at = fields.DatetimeField(null=True)

    class Meta:
        table = "levels"
        unique_together = (("guild", "member_id"),)
        indexes = (Index(fields=("guild_id", "xp")),)


class Starboard(TimestampMixin, Model):
    """A guild's starboard settings (one per guild)."""

    guild: fields.OneToOneRelation[Guild] = fields.OneToOneField(
        "models.Guild", related_name="starboard", on_delete=fields.CASCADE, primary_key=True
    )
    guild_id: int
    channel_id = SnowflakeField()
    emoji = TextField(64, min_length=1, default="\u2b50")
    threshold = CheckedIntField(check="{col} >= 1", default=3)
    allow_self_star = fields.BooleanField(default=False)

    class Meta:
        table = "starboards"


class StarboardMessage(TimestampMixin, Model):
    """A starred message, its star count and its copy on the starboard (once posted)."""

    id = fields.BigIntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="starboard_messages", on_delete=fields.CASCADE
    )
    guild_id: int
    message_id = SnowflakeField()
    channel_id = SnowflakeField()
    author_id = SnowflakeField()
    # The copy posted in the starboard channel, once there is one.
    starboard_message_id = SnowflakeField(null=True, unique=True)
    stars = CheckedIntField(check="{col} >= 0", default=0, db_default=0)

    starrers: fields.ReverseRelation[StarboardStar]

    class Meta:
        table = "starboard_messages"
        unique_together = (("guild", "message_id"),)


class StarboardStar(Model):
    """One member's star on a starred message; at most one per (message, member)."""

    id = fields.BigIntField(primary_key=True)
    message: fields.ForeignKeyRelation[StarboardMessage] = fields.ForeignKeyField(
        "models.StarboardMessage", related_name="starrers", on_delete=fields.CASCADE
    )
    message_id: int
    user_id = SnowflakeField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "starboard_stars"
        unique_together = (("message", "user_id"),)
