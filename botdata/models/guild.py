"""Guilds and their configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from botdata.models.base import (
    AuditMixin,
    CheckedIntField,
    SnowflakeField,
    SnowflakePKField,
    TextField,
    TimestampMixin,
)

# Permission levels run from 0 (everyone) to 7 (guild owner).
PERMISSION_LEVELS = range(8)

if TYPE_CHECKING:
    from botdata.models.content import Reminder, Snippet, SnippetName
    from botdata.models.dynamic import GuildSetting
    from botdata.models.moderation import Case, CustomCaseType, Note
    from botdata.models.permissions import GuildPermission
    from botdata.models.social import AFK, Levels, Starboard, StarboardMessage
    from botdata.models.web import WebGuildPermission


class Guild(TimestampMixin, Model):
    """A guild the bot is in. Deleting it deletes every row that belongs to it."""

    id = SnowflakePKField()
    joined_at = fields.DatetimeField(auto_now_add=True)
    # Last case number handed out in this guild (bumped atomically by the case manager).
    case_count = CheckedIntField(check="{col} >= 0", default=0, db_default=0)
    # Last note number handed out in this guild.
    note_count = CheckedIntField(check="{col} >= 0", default=0, db_default=0)

    config: fields.BackwardOneToOneRelation[GuildConfig]
    starboard: fields.BackwardOneToOneRelation[Starboard]
    snippets: fields.ReverseRelation[Snippet]
    snippet_names: fields.ReverseRelation[SnippetName]
    reminders: fields.ReverseRelation[Reminder]
    settings: fields.ReverseRelation[GuildSetting]
    case_types: fields.ReverseRelation[CustomCaseType]
    cases: fields.ReverseRelation[Case]
    notes: fields.ReverseRelation[Note]
    permissions: fields.ReverseRelation[GuildPermission]
    afk: fields.ReverseRelation[AFK]
    levels: fields.ReverseRelation[Levels]
    starboard_messages: fields.ReverseRelation[StarboardMessage]
    web_permissions: fields.ReverseRelation[WebGuildPermission]

    class Meta:
        table = "guilds"


class GuildConfig(TimestampMixin, AuditMixin, Model):
    """Per-guild settings: prefix, log channels, jail, and the role of each permission level."""

    guild: fields.OneToOneRelation[Guild] = fields.OneToOneField(
        "models.Guild", related_name="config", on_delete=fields.CASCADE, primary_key=True
    )
    guild_id: int
    # ``None`` means the bot's default prefix.
    prefix = TextField(10, min_length=1, null=True)

    mod_log_id = SnowflakeField(null=True)
    audit_log_id = SnowflakeField(null=True)
    join_log_id = SnowflakeField(null=True)
    private_log_id = SnowflakeField(null=True)
    report_log_id = SnowflakeField(null=True)
    dev_log_id = SnowflakeField(null=True)

    jail_role_id = SnowflakeField(null=True)
    jail_channel_id = SnowflakeField(null=True)

    perm_level_0_role_id = SnowflakeField(null=True)
    perm_level_1_role_id = SnowflakeField(null=True)
    perm_level_2_role_id = SnowflakeField(null=True)
    perm_level_3_role_id = SnowflakeField(null=True)
    perm_level_4_role_id = SnowflakeField(null=True)
    perm_level_5_role_id = SnowflakeField(null=True)
    perm_level_6_role_id = SnowflakeField(null=True)
    perm_level_7_role_id = SnowflakeField(null=True)

    class Meta:
        table = "guild_configs"
