"""Typed errors raised by botdata. Everything derives from :class:`BotdataError`."""

from __future__ import annotations


class BotdataError(Exception):
    """Base class of every error botdata raises on purpose."""


class ConfigurationError(BotdataError):
    """A setting is missing or invalid; the message names the variable."""


class DatabaseUnavailableError(BotdataError):
    """The database could not be reached; the message names the URL (password hidden)."""


class SchemaNotReadyError(BotdataError):
    """The database has not been migrated to the schema this version of botdata needs."""


class AlreadyConnectedError(BotdataError):
    """``botdata.connect()`` was called while another handle in this process is open."""


class ValidationError(BotdataError, ValueError):
    """Input that botdata refuses before writing anything."""


class InvalidSnowflakeError(ValidationError):
    """A value given as a Discord id is not a snowflake."""
