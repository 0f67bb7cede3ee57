"""Tortoise models of botdata, one module per domain. Only the managers use them."""

from tortoise.models import Model

from botdata.models.content import Reminder, Snippet, SnippetName
from botdata.models.dynamic import GuildSetting
from botdata.models.guild import Guild, GuildConfig
from botdata.models.moderation import Case, CaseEdit, CaseType, CustomCaseType, Note
from botdata.models.permissions import AccessType, GuildPermission, PermissionType
from botdata.models.social import AFK, Levels, Starboard, StarboardMessage, StarboardStar
from botdata.models.web import WebGuildPermission, WebSession, WebUser

__models__: list[type[Model]] = [
    Guild,
    GuildConfig,
    CustomCaseType,
    Case,
    CaseEdit,
    Note,
    Snippet,
    SnippetName,
    Reminder,
    AFK,
    Levels,
    Starboard,
    StarboardMessage,
    StarboardStar,
    GuildPermission,
    WebUser,
    WebSession,
    WebGuildPermission,
    GuildSetting,
]

# Docstrings document the code, not the schema: keep them out of table comments so that editing
# one never needs a migration (SQLite cannot alter comments). Field comments use plain ``#``.
for _model in __models__:
    _model._meta.table_description = ""

__all__ = [
    "AFK",
    "AccessType",
    "Case",
    "CaseEdit",
    "CaseType",
    "CustomCaseType",
    "Guild",
    "GuildConfig",
    "GuildPermission",
    "GuildSetting",
    "Levels",
    "Note",
    "PermissionType",
    "Reminder",
    "Snippet",
    "SnippetName",
    "Starboard",
    "StarboardMessage",
    "StarboardStar",
    "WebGuildPermission",
    "WebSession",
    "WebUser",
]
