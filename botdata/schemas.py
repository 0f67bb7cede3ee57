"""Pydantic schemas of the models: what managers return and what an API would serialise.

Each is made from a model instance with ``Schema.model_validate(instance)`` and is frozen.
Foreign keys appear as plain ids (``guild_id``), never as related objects.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict

from botdata.models import AccessType, CaseType, PermissionType


class Schema(BaseModel):
    """Base of every schema: built from ORM attributes, immutable."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class GuildSchema(Schema):
    id: int
    joined_at: datetime
    case_count: int
    note_count: int


class GuildConfigSchema(Schema):
    guild_id: int
    prefix: str | None = None
    mod_log_id: int | None = None
    audit_log_id: int | None = None
    join_log_id: int | None = None
    private_log_id: int | None = None
    report_log_id: int | None = None
    dev_log_id: int | None = None
    jail_role_id: int | None = None
    jail_channel_id: int | None = None
    perm_level_0_role_id: int | None = None
    perm_level_1_role_id: int | None = None
    perm_level_2_role_id: int | None = None
    perm_level_3_role_id: int | None = None
    perm_level_4_role_id: int | None = None
    perm_level_5_role_id: int | None = None
    perm_level_6_role_id: int | None = None
    perm_level_7_role_id: int | None = None


class CustomCaseTypeSchema(Schema):
    id: int
    guild_id: int
    name: str
    display_name: str
    description: str | None
    severity: int
    requires_duration: bool


class CaseSchema(Schema):
    id: int
    guild_id: int
    number: int
    type: CaseType | None
    custom_type_id: int | None
    reason: str
    user_id: int
    moderator_id: int
    user_roles: list[int]
    expires_at: datetime | None
    metadata: dict[str, Any] | None
    active: bool
    voided_at: datetime | None
    voided_by: int | None
    void_reason: str | None
    created_at: datetime
    updated_at: datetime


class CaseEditSchema(Schema):
    case_id: int
    editor_id: int
    old_reason: str
    new_reason: str
    created_at: datetime


class NoteSchema(Schema):
    id: int
    guild_id: int
    number: int
    user_id: int
    moderator_id: int
    content: str
    created_at: datetime
    updated_at: datetime


class SnippetSchema(Schema):
    id: int
    guild_id: int
    name: str
    content: str
    author_id: int
    uses: int
    locked: bool
    aliases: list[str] = []
    created_at: datetime


class ReminderSchema(Schema):
    id: int
    guild_id: int
    user_id: int
    channel_id: int
    content: str
    due_at: datetime
    sent_at: datetime | None
    # Failed deliveries so far (a callback can tell a retry from the first try).
    attempts: int
    created_at: datetime


class AFKSchema(Schema):
    guild_id: int
    member_id: int
    nickname: str
    reason: str
    since: datetime
    until: datetime | None
    enforced: bool
    permanent: bool


class LevelsSchema(Schema):
    guild_id: int
    member_id: int
    xp: int
    level: int
    blacklisted: bool
    last_message_at: datetime | None


class StarboardSchema(Schema):
    guild_id: int
    channel_id: int
    emoji: str
    threshold: int
    allow_self_star: bool


class StarboardMessageSchema(Schema):
    guild_id: int
    message_id: int
    channel_id: int
    author_id: int
    starboard_message_id: int | None
    stars: int


class GuildPermissionSchema(Schema):
    id: int
    guild_id: int
    type: PermissionType
    access: AccessType
    target_id: int
    target_name: str | None
    command: str | None
    module: str | None
    expires_at: datetime | None
    active: bool


class WebUserSchema(Schema):
    id: int
    username: str
    avatar: str | None
    email: str | None
    last_login_at: datetime | None
    active: bool


class WebGuildPermissionSchema(Schema):
    user_id: int
    guild_id: int
    level: int


class GuildSettingSchema(Schema):
    guild_id: int
    module: str
    key: str
    value: Any


class StarAction(str, Enum):
    """What the bot must do with a message's copy on the starboard after a star changed."""

    POST = "post"  # post a copy and record it with ``db.starboard.set_copy``
    UPDATE = "update"  # edit the copy's star count
    REMOVE = "remove"  # delete the copy (its record is already cleared)
    NOTHING = "nothing"


class StarDecision(Schema):
    """The outcome of ``db.starboard.add_star``/``remove_star``.

    ``message_id``/``channel_id`` are the original message's, also when the star was given on
    its starboard copy; ``starboard_message_id`` is the copy to update or remove (None to post).
    """

    action: StarAction
    stars: int
    message_id: int
    channel_id: int
    starboard_message_id: int | None


class ErasureSummary(Schema):
    """What ``db.privacy.erase_user`` did, as row counts per table.

    ``starboard_copies``: the erased user's starred messages that had a copy on a starboard;
    the bot should delete those Discord messages.

    ``afk_statuses``: the user's AFK statuses that were deleted; the bot should give back the
    nicknames stored with them (where the AFK nickname is still there).

    ``cache_cleared``: False when the cache could not be cleared at once (Redis did not
    answer). The clear is then queued: this process applies it before its next use of Redis
    (its own reads never show the erased data) and retries it in the background until it
    succeeds; until then other processes may still serve cached copies of the user's data.
    """

    user_id: int
    deleted: dict[str, int]
    anonymised: dict[str, int]
    kept: dict[str, int]
    starboard_copies: list[StarboardMessageSchema]
    afk_statuses: list[AFKSchema]
    cache_cleared: bool


class XPGrantSchema(Schema):
    """What ``db.levels.grant_message_xp`` changed.

    ``previous_level`` is the level before this message's XP; ``rewards_due`` are reward roles
    to give the member now, ``rewards_revoked`` reward roles to take away (highest-only rewards).
    """

    guild_id: int
    member_id: int
    gained: int
    xp: int
    level: int
    previous_level: int
    levelled_up: bool
    rewards_due: tuple[int, ...]
    rewards_revoked: tuple[int, ...]


class LeaderboardEntrySchema(Schema):
    """One line of a guild's XP leaderboard (``rank`` is 1-based)."""

    rank: int
    member_id: int
    xp: int
    level: int
