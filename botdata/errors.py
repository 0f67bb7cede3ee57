"""Typed errors raised by botdata. Everything derives from :class:`BotdataError`."""

from __future__ import annotations


class BotdataError(Exception):
    """Base class of every error botdata raises on purpose."""


class ConfigurationError(BotdataError):
    """A setting is missing or invalid; the message names the variable."""


class DatabaseUnavailableError(BotdataError):
    """The database could not be reached, or the connection a call used failed.

    From ``connect()`` the message names the URL (password hidden); from a call it says briefly
    what failed, without SQL or credentials (safe to show a member). The driver's exception is
    chained as ``__cause__``. A read whose connection died was already retried once on a fresh
    connection; a write is never retried, so a write interrupted this way may or may not have
    been applied (the database alone decides; a transaction is applied whole or not at all).
    """


class DatabaseTimeoutError(DatabaseUnavailableError):
    """The database was too busy to answer in time: a statement waited for a lock longer than
    ``DATABASE_LOCK_TIMEOUT`` (or hit a deadlock), ran longer than ``DATABASE_STATEMENT_TIMEOUT``,
    or the call waited longer than ``DATABASE_POOL_TIMEOUT`` for a free connection. The failed
    statement (and its transaction) wrote nothing; trying again later may succeed. A subclass
    of :class:`DatabaseUnavailableError`, so one ``except`` clause catches both.
    """


class SchemaNotReadyError(BotdataError):
    """The database has not been migrated to the schema this version of botdata needs."""


class AlreadyConnectedError(BotdataError):
    """``botdata.connect()`` was called while another handle in this process is open."""


class ValidationError(BotdataError, ValueError):
    """Input that botdata refuses before writing anything."""


class DatabaseRejectedValueError(ValidationError):
    """The database (or its driver) refused a value as invalid data: text it cannot encode, a
    number out of its column's range (PostgreSQL SQLSTATE class 22, SQLite's overflow). The
    safety net behind the managers' own checks, which should have refused the input first;
    nothing was written."""


class UnstorableTextError(ValidationError):
    """Text holds a NUL character or a surrogate code point (U+D800-U+DFFF), which no backend
    stores as given (PostgreSQL refuses NUL, nothing encodes a lone surrogate as UTF-8).

    Refused in every text argument and every string (keys included) inside a JSON value, on
    both backends alike; the message names the argument. See :mod:`botdata.managers.checks`.
    """


class InvalidSnowflakeError(ValidationError):
    """A value given as a Discord id is not a snowflake."""


class NotFoundError(BotdataError, LookupError):
    """The row asked for does not exist."""


class InvalidFlagError(ValidationError):
    """A yes/no option (such as ``allow_self_star``, ``active`` or ``keep_moderation_records``)
    is not a bool."""


# Starboard (botdata.managers.starboard) -------------------------------------------------------


class StarboardNotConfiguredError(NotFoundError):
    """The guild has no starboard (configure one first)."""


class StarboardMessageNotFoundError(NotFoundError):
    """The guild's starboard has no entry for that message (nobody starred it yet)."""


class InvalidStarboardEmojiError(ValidationError):
    """A starboard emoji is not a str of 1-64 characters without whitespace."""


class InvalidStarThresholdError(ValidationError):
    """A starboard threshold is not an int from 1 to 2147483647."""


class StarboardCopyConflictError(BotdataError):
    """That starboard message id is already recorded as the copy of another starred message."""


# Web dashboard (botdata.managers.web) ---------------------------------------------------------


class WebUserNotFoundError(NotFoundError):
    """No dashboard user has that Discord id."""


class WebUserInactiveError(BotdataError):
    """The dashboard user is deactivated: no new session may be opened for them."""


class InvalidUsernameError(ValidationError):
    """A dashboard username is not a str of 1-100 characters with some non-blank text."""


class InvalidAvatarError(ValidationError):
    """A dashboard avatar (Discord avatar hash or URL) is not a str of 1-200 characters."""


class InvalidEmailError(ValidationError):
    """An email address is not a str of at most 255 characters shaped like ``local@domain.tld``."""


class InvalidIPAddressError(ValidationError):
    """An IP address is not a valid IPv4 or IPv6 address (of at most 45 characters, an IPv6
    zone included)."""


class InvalidSessionTokenError(ValidationError):
    """A session token is not a str."""


class InvalidTimestampError(ValidationError):
    """A time is not a timezone-aware datetime, or it (or the time a method derives from it)
    is outside ``datetime``'s range in UTC (years 1 to 9999)."""


# Moderation (botdata.managers.cases, case_types, notes) ---------------------------------------


class CaseNotFoundError(NotFoundError):
    """The guild has no case with that number."""


class CaseTypeNotFoundError(NotFoundError):
    """The guild has no custom case type of that name."""


class NoteNotFoundError(NotFoundError):
    """The guild has no note with that number, or it was deleted."""


class InvalidCaseTypeNameError(ValidationError):
    """A custom case type name is not a str of 1-50 characters from a-z, 0-9, ``_`` and ``-``
    (upper case is folded to lower case)."""


class BuiltinCaseTypeNameError(ValidationError):
    """A custom case type name is the name of a built-in :class:`CaseType` (pass the enum
    member for a built-in type; custom types may not take those names)."""


class InvalidCaseTypeTextError(ValidationError):
    """A custom case type's display name is not 1-100 characters or its description is longer
    than 500."""


class InvalidSeverityError(ValidationError):
    """A custom case type's severity is not an int from 1 to 10."""


class CaseTypeExistsError(BotdataError):
    """The guild already has a custom case type of that name."""


class CaseTypeInUseError(BotdataError):
    """A custom case type cannot be deleted while cases (voided ones included) use it."""


class ReasonTooLongError(ValidationError):
    """A case reason (or void reason) is not a str of at most 2000 characters."""


class DurationRequiredError(ValidationError):
    """The case type needs a duration or expiry time (TEMPBAN, TIMEOUT, custom types with
    ``requires_duration``) and none was given."""


class DurationNotAllowedError(ValidationError):
    """A duration or expiry time was given for a case type that does not expire."""


class InvalidExpiryError(ValidationError):
    """A duration is not a positive timedelta, an expiry time is not a timezone-aware time in
    the future, both were given, or a claim's ``now``/``lease`` is not aware/positive; or a
    time (given, or derived as time + duration) is outside ``datetime``'s range in UTC (years
    1 to 9999)."""


class InvalidCaseMetadataError(ValidationError):
    """Case metadata is not a JSON-serialisable dict with str keys, nests deeper than
    ``MAX_JSON_DEPTH`` (32) levels or encodes to more than ``MAX_JSON_SIZE`` (65,536) bytes
    (see :mod:`botdata.managers.checks`)."""


class TooManyRolesError(ValidationError):
    """A case's ``user_roles`` holds more role ids than a guild can have (250)."""


class CaseAlreadyVoidedError(BotdataError):
    """The case was voided before; a case is voided once."""


class InvalidNoteContentError(ValidationError):
    """A note's content is not a str of 1-2000 characters with some non-blank text."""


class InvalidPageError(ValidationError):
    """A page's ``limit`` is not an int from 1 to 100, or ``before`` is not a positive int."""


class InvalidNumberError(ValidationError):
    """A case or note number is not a positive int. (A positive int above any number a row
    can have, 2**31 - 1, is "not found": :class:`CaseNotFoundError`, :class:`NoteNotFoundError`.)"""


# Snippets and reminders (botdata.managers.snippets, reminders) --------------------------------


class InvalidSnippetNameError(ValidationError):
    """A snippet name or alias is not a str of 1-100 characters from ASCII letters, digits,
    ``_`` and ``-``."""


class InvalidSnippetContentError(ValidationError):
    """A snippet's content is not a str of 1-4000 characters with some non-blank text."""


class InvalidOffsetError(InvalidPageError):
    """A page's ``offset`` is not an int >= 0."""


class SnippetNotFoundError(NotFoundError):
    """The guild has no snippet with that name or alias (ignoring case)."""


class SnippetNameTakenError(BotdataError):
    """The guild already has a snippet name or alias equal to it, ignoring case."""


class NotAnAliasError(BotdataError):
    """``remove_alias`` was given a snippet's own name, not one of its aliases."""


class SnippetPermissionError(BotdataError):
    """The actor may not change the snippet: not its author nor a moderator (locking: not a
    moderator)."""


class SnippetLockedError(SnippetPermissionError):
    """The snippet is locked: only moderators may change it (and nobody may claim it)."""


class SnippetAuthorPresentError(BotdataError):
    """A snippet can be claimed only when its author is no longer in the guild."""


class SnippetAliasLimitError(BotdataError):
    """The snippet has ``MAX_ALIASES`` aliases already (``botdata.managers.snippets``)."""


class InvalidReminderContentError(ValidationError):
    """A reminder's content is not a str of 1-2000 characters with some non-blank text."""


class InvalidReminderTimeError(ValidationError):
    """A reminder's due time is not a timezone-aware datetime in the future (within
    ``datetime``'s range in UTC)."""


class ReminderLimitError(BotdataError):
    """The member already has ``REMINDER_MAX_PER_USER`` pending reminders in the guild."""


class ReminderNotFoundError(NotFoundError):
    """The guild has no pending reminder with that id (never existed, sent or cancelled)."""


class ReminderPermissionError(BotdataError):
    """A member tried to cancel a reminder of someone else."""


class DispatcherRunningError(BotdataError):
    """``db.reminders.start(callback)`` was called with a callback that is delivering this
    handle's reminders already."""


# The clock (botdata.clock) -------------------------------------------------------------------


class InvalidClockStepError(ValidationError):
    """``ManualClock.advance`` was given no step, a negative one, or both a timedelta and parts,
    or ``ManualClock(start)`` a start that is not a timezone-aware datetime."""


class ClockNotSettledError(BotdataError):
    """The tasks ``ManualClock.advance`` woke did not reach their next ``clock.sleep`` (or end)
    within the settle timeout: one is blocked, or runs without sleeping on the clock."""


# Guilds and dynamic settings (botdata.managers.guilds) ----------------------------------------


class UnknownConfigFieldError(ValidationError):
    """``update_config`` was given a field name the guild configuration does not have."""


class InvalidPrefixError(ValidationError):
    """A command prefix is not 1-10 characters without whitespace."""


class InvalidSettingNameError(ValidationError):
    """A dynamic setting's module or key is not a string of 1-100 characters."""


class SettingNotSerializableError(ValidationError):
    """A dynamic setting's value cannot be stored as JSON (or is None: delete it instead), nests
    deeper than ``MAX_JSON_DEPTH`` (32) levels or encodes to more than ``MAX_JSON_SIZE``
    (65,536) bytes (see :mod:`botdata.managers.checks`)."""


class InvalidSettingValueError(ValidationError):
    """A dynamic setting's value does not match the pydantic model registered for its key."""


# Permissions (botdata.managers.permissions) -----------------------------------------------------


class InvalidPermissionLevelError(ValidationError):
    """A permission level is not an int from 0 to 7."""


class InvalidRuleAccessError(ValidationError):
    """A permission rule's access is not whitelist, blacklist or ignore."""


class InvalidRuleTargetError(ValidationError):
    """A permission rule's target is not a member, role, channel or category (or its name is
    longer than 100 characters)."""


class InvalidRuleScopeError(ValidationError):
    """A permission rule names not exactly one of command and module, or a name that is empty
    or longer than 100 characters."""


# AFK and levels (botdata.managers.afk, levels) ------------------------------------------------


class InvalidAFKReasonError(ValidationError):
    """An AFK reason is not a str of at most 500 characters."""


class InvalidAFKNicknameError(ValidationError):
    """An AFK nickname (the one to restore) is not a str of at most 100 characters."""


class InvalidAFKExpiryError(ValidationError):
    """An AFK ``until`` is not a timezone-aware time in the future (within ``datetime``'s range
    in UTC), or was given together with ``permanent=True`` (a permanent AFK never expires)."""


class InvalidXPError(ValidationError):
    """An XP total is not an int from 0 to 2**53 - 1."""


class InvalidLevelError(ValidationError):
    """A level is not an int from 0 to the highest level whose XP stays within 2**53 - 1."""


# Rate limits (botdata.managers.ratelimits) ------------------------------------------------------


class InvalidRateLimitScopeError(ValidationError):
    """A rate-limit scope is not a str of 1-100 characters."""
