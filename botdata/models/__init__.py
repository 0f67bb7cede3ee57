"""Tortoise models of botdata, one module per domain. Only the managers use them."""

from tortoise.models import Model

from botdata.models import content, dynamic, guild, moderation, permissions, social, web
from botdata.models.content import Reminder, Snippet, SnippetName
from botdata.models.dynamic import GuildSetting
from botdata.models.guild import Guild, GuildConfig
from botdata.models.moderation import Case, CaseEdit, CaseType, CustomCaseType, Note
from botdata.models.permissions import AccessType, GuildPermission, PermissionType
from botdata.models.social import AFK, Levels, Starboard, StarboardMessage, StarboardStar
from botdata.models.web import WebGuildPermission, WebSession, WebUser

#: Every model, found in the domain modules (a new model in one of them needs no listing here).
__models__: list[type[Model]] = [
    value
    for module in (guild, moderation, content, social, permissions, web, dynamic)
    for value in vars(module).values()
    if isinstance(value, type)
    and issubclass(value, Model)
    and value.__module__ == module.__name__
    and not value._meta.abstract
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
