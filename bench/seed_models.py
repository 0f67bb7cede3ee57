"""The seed document's SQLModel tables (the ones the workloads touch), as written there.

Column names keep the seed's prefixes (``case_reason``, ``reminder_sent`` ...), every table
carries the seed's ``BaseModel`` mixins (timestamps, soft delete, audit), and the indexes are
the seed's. Changes needed to make the seed's text run at all, and nothing else:

- ``sa_column=BigInteger()`` becomes ``sa_type=BigInteger`` (``sa_column`` wants a ``Column``,
  and it would also silently drop ``primary_key`` and ``foreign_key``);
- ``Index("idx_case_created_desc", "case_created_at")`` names a column that does not exist: it
  indexes ``created_at``;
- ``Relationship`` attributes are left out (nothing here loads a relationship);
- no unique constraint is added: the seed has none on ``(guild_id, case_number)``.

- current SQLModel maps ``datetime`` to ``TIMESTAMP WITH TIME ZONE`` and refuses naive values,
  so :func:`utcnow` (aware UTC) stands in for the seed's ``datetime.utcnow``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Float, Index
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class TimestampMixin(SQLModel):
    """Automatic created_at and updated_at timestamps (naive UTC, as the seed)."""

    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime | None = Field(default=None)


class SoftDeleteMixin(SQLModel):
    """Soft delete columns."""

    is_deleted: bool = Field(default=False)
    deleted_at: datetime | None = Field(default=None)
    deleted_by: int | None = Field(default=None, sa_type=BigInteger)


class AuditMixin(SQLModel):
    """Who created / modified the row."""

    created_by: int | None = Field(default=None, sa_type=BigInteger)
    updated_by: int | None = Field(default=None, sa_type=BigInteger)


class SeedBase(TimestampMixin, SoftDeleteMixin, AuditMixin):
    """The seed's ``BaseModel`` (table name: the class name, lower-cased)."""


class Guild(SeedBase, table=True):
    """Main guild table."""

    guild_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    guild_joined_at: datetime | None = Field(default_factory=utcnow)
    case_count: int = Field(default=0)

    __table_args__ = (Index("idx_guild_id", "guild_id"),)


class GuildConfig(SeedBase, table=True):
    """Guild configuration settings."""

    guild_id: int = Field(
        primary_key=True,
        foreign_key="guild.guild_id",
        sa_type=BigInteger,
        sa_column_kwargs={"autoincrement": False},
    )
    prefix: str | None = Field(default=None, max_length=10)
    mod_log_id: int | None = Field(default=None, sa_type=BigInteger)
    audit_log_id: int | None = Field(default=None, sa_type=BigInteger)
    perm_level_0_role_id: int | None = Field(default=None, sa_type=BigInteger)
    perm_level_1_role_id: int | None = Field(default=None, sa_type=BigInteger)


class CaseType(str, Enum):
    """Standard moderation case types."""

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


class Case(SeedBase, table=True):
    """Moderation cases."""

    case_id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    case_status: bool | None = Field(default=True)
    case_type: CaseType | None = Field(default=None)
    case_reason: str = Field(max_length=2000)
    case_moderator_id: int = Field(sa_type=BigInteger)
    case_user_id: int = Field(sa_type=BigInteger)
    case_user_roles: list[int] = Field(default_factory=list, sa_column=Column(ARRAY(BigInteger())))
    case_number: int | None = Field(default=None)
    case_expires_at: datetime | None = Field(default=None)
    case_metadata: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON()))
    guild_id: int = Field(foreign_key="guild.guild_id", sa_type=BigInteger)

    __table_args__ = (
        Index("idx_case_guild_user", "guild_id", "case_user_id"),
        Index("idx_case_guild_moderator", "guild_id", "case_moderator_id"),
        Index("idx_case_created_desc", "created_at"),
    )


class Reminder(SeedBase, table=True):
    """User reminders (the seed gives this table no index)."""

    reminder_id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    reminder_content: str = Field(max_length=2000)
    reminder_expires_at: datetime = Field()
    reminder_channel_id: int = Field(sa_type=BigInteger)
    reminder_user_id: int = Field(sa_type=BigInteger)
    reminder_sent: bool = Field(default=False)
    guild_id: int = Field(foreign_key="guild.guild_id", sa_type=BigInteger)


class AFK(SeedBase, table=True):
    """AFK status tracking (the seed keys it by member alone)."""

    member_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    nickname: str = Field(max_length=100)
    reason: str = Field(max_length=500)
    since: datetime = Field(default_factory=utcnow)
    until: datetime | None = Field(default=None)
    guild_id: int = Field(foreign_key="guild.guild_id", sa_type=BigInteger)
    enforced: bool = Field(default=False)
    perm_afk: bool = Field(default=False)

    __table_args__ = (Index("idx_afk_member_guild", "member_id", "guild_id", unique=True),)


class Levels(SeedBase, table=True):
    """XP and levels."""

    member_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    guild_id: int = Field(
        primary_key=True,
        foreign_key="guild.guild_id",
        sa_type=BigInteger,
        sa_column_kwargs={"autoincrement": False},
    )
    xp: float = Field(default=0.0, sa_type=Float)
    level: int = Field(default=0)
    blacklisted: bool = Field(default=False)
    last_message: datetime = Field(default_factory=utcnow)

    __table_args__ = (Index("idx_levels_guild_xp", "guild_id", "xp"),)
