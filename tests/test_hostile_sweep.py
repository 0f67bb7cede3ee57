"""Every manager method against every hostile value of its parameters' kinds, both backends.

Every public coroutine method of every manager on the handle, found by introspection, is called
with a valid set of arguments (:data:`SWEEP`) in which one parameter at a time gets each hostile
value of its kind, read from its annotation (text: NUL, a surrogate, a megabyte; numbers beyond
32 and 64 bits, negative, too long to print; times beyond ``datetime``'s range in UTC; JSON too
deep, too large, with unstorable strings...). After every call:

- nothing but a :class:`~botdata.errors.BotdataError` escaped, and not one translated from the
  driver by the database client's safety net (the manager's own checks must refuse first);
- a refusal wrote nothing and its message is short;
- no row holds unstorable text or JSON beyond the bounds.

A new method fails ``test_every_method_is_swept`` until it has a valid call in :data:`SWEEP`; a
new parameter is swept by its annotation without any change here. The exact errors and messages
are checked in ``tests/test_hostile_input.py``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import botdata
from botdata.errors import BotdataError, DatabaseUnavailableError
from botdata.managers.checks import MAX_JSON_DEPTH, MAX_JSON_SIZE, MAX_NUMBER, excerpt
from botdata.models import AccessType, CaseType, PermissionType
from tests.hostile_support import (
    BEFORE_MIN,
    CHANNEL,
    COPY,
    GUILD,
    MEGABYTE,
    MESSAGE,
    MESSAGE_LIMIT,
    MOD,
    NUL,
    OTHER_GUILD,
    OTHER_USER,
    PAST_MAX,
    ROLE,
    SURROGATE,
    USER,
    UTC_MAX,
    UTC_MIN,
    deep,
    seed,
    snapshot,
    soon,
    stored_problems,
)

# The sweep ---------------------------------------------------------------------------------------

HOSTILE: dict[str, tuple[Any, ...]] = {
    "text": (NUL, SURROGATE, MEGABYTE),
    "number": (MAX_NUMBER + 1, 2**63, -1, 10**5000),
    "time": (PAST_MAX, BEFORE_MIN, UTC_MAX, UTC_MIN),
    "duration": (timedelta.max, timedelta.min),
    "ids": ([2**63], [10**5000], [NUL]),
    "json": (
        deep(250),
        deep(5000),
        {"big": MEGABYTE},
        {"text": NUL},
        {SURROGATE: 1},
        [math.inf],
    ),
}

#: Annotation words and the kind of hostile values a parameter annotated with them gets.
KINDS = {
    "str": "text",
    "int": "number",
    "Snowflake": "number",
    "OptionalSnowflake": "number",
    "datetime": "time",
    "timedelta": "duration",
    "Iterable[int]": "ids",
    "Any": "json",
    "dict[str, Any]": "json",
    "LevelSettings": "json",
}

#: Parameters the sweep leaves out, and why.
EXEMPT = {
    ("guilds.get_setting", "default"): "returned as given when the setting is unset, never stored",
}

#: A valid call of every public coroutine method: keyword arguments (callables get the seed).
SWEEP: dict[str, dict[str, Any]] = {
    "guilds.config": {"guild_id": GUILD},
    "guilds.delete_setting": {"guild_id": GUILD, "module": "mod", "key": "other"},
    "guilds.ensure": {"guild_id": GUILD},
    "guilds.get_setting": {"guild_id": GUILD, "module": "mod", "key": "key"},
    "guilds.module_settings": {"guild_id": GUILD, "module": "mod"},
    "guilds.prefix": {"guild_id": GUILD},
    "guilds.remove": {"guild_id": OTHER_GUILD},
    "guilds.set_setting": {"guild_id": GUILD, "module": "mod", "key": "key", "value": [1]},
    "guilds.update_config": {"guild_id": GUILD},
    "cases.claim_due": {"now": datetime.now(timezone.utc)},
    "cases.complete_expiry": {"guild_id": GUILD, "number": 2},
    "cases.create": {
        "guild_id": GUILD,
        "user_id": USER,
        "moderator_id": MOD,
        "case_type": CaseType.JAIL,  # takes a duration (or expiry time) or none
        "reason": "r",
    },
    "cases.edit": {"guild_id": GUILD, "number": 1, "reason": "r2", "editor_id": MOD},
    "cases.for_user": {"guild_id": GUILD, "user_id": USER},
    "cases.get": {"guild_id": GUILD, "number": 1},
    "cases.history": {"guild_id": GUILD, "number": 1},
    "cases.is_jailed": {"guild_id": GUILD, "user_id": USER},
    "cases.is_poll_banned": {"guild_id": GUILD, "user_id": USER},
    "cases.is_snippet_banned": {"guild_id": GUILD, "user_id": USER},
    "cases.release": {"guild_id": GUILD, "number": 2},
    "cases.search": {"guild_id": GUILD},
    "cases.void": {"guild_id": GUILD, "number": 1, "by": MOD, "reason": "v"},
    "case_types.create": {"guild_id": GUILD, "name": "other", "display_name": "Other"},
    "case_types.delete": {"guild_id": GUILD, "name": "nope"},
    "case_types.get": {"guild_id": GUILD, "name": "custom"},
    "case_types.list": {"guild_id": GUILD},
    "notes.add": {"guild_id": GUILD, "user_id": USER, "moderator_id": MOD, "content": "n"},
    "notes.delete": {"guild_id": GUILD, "number": 1, "by": MOD},
    "notes.edit": {"guild_id": GUILD, "number": 1, "content": "n2", "editor_id": MOD},
    "notes.for_user": {"guild_id": GUILD, "user_id": USER},
    "notes.get": {"guild_id": GUILD, "number": 1},
    "permissions.add_rule": {
        "guild_id": GUILD,
        "access": AccessType.BLACKLIST,
        "target_type": PermissionType.MEMBER,
        "target_id": USER,
        "command": "kick",
    },
    "permissions.clear_level_role": {"guild_id": GUILD, "level": 1},
    "permissions.is_allowed": {
        "guild_id": GUILD,
        "command": "ban",
        "module": "moderation",
        "user_id": USER,
        "role_ids": [ROLE],
        "channel_id": CHANNEL,
        "category_id": None,
    },
    "permissions.level_of": {"guild_id": GUILD, "role_ids": [ROLE]},
    "permissions.remove_rule": {"guild_id": GUILD, "rule_id": lambda s: s.rule_id},
    "permissions.rules": {"guild_id": GUILD},
    "permissions.set_level_role": {"guild_id": GUILD, "level": 1, "role_id": ROLE},
    "snippets.add_alias": {
        "guild_id": GUILD,
        "name": "rules",
        "alias": "rl",
        "actor_id": USER,
        "is_moderator": True,
    },
    "snippets.claim": {
        "guild_id": GUILD,
        "name": "rules",
        "new_author_id": MOD,
        "author_present": True,
    },
    "snippets.create": {"guild_id": GUILD, "name": "faq", "content": "c", "author_id": USER},
    "snippets.delete": {"guild_id": GUILD, "name": "nope", "actor_id": USER, "is_moderator": True},
    "snippets.edit": {
        "guild_id": GUILD,
        "name": "rules",
        "content": "c2",
        "actor_id": USER,
        "is_moderator": True,
    },
    "snippets.get": {"guild_id": GUILD, "name": "rules"},
    "snippets.list": {"guild_id": GUILD},
    "snippets.remove_alias": {
        "guild_id": GUILD,
        "alias": "nope",
        "actor_id": USER,
        "is_moderator": True,
    },
    "snippets.set_locked": {
        "guild_id": GUILD,
        "name": "rules",
        "locked": False,
        "actor_id": MOD,
        "is_moderator": True,
    },
    "snippets.use": {"guild_id": GUILD, "name": "rules"},
    "reminders.cancel": {
        "guild_id": GUILD,
        "reminder_id": lambda s: s.reminder_id,
        "user_id": OTHER_USER,  # not theirs: refused, the reminder stays
    },
    "reminders.create": {
        "guild_id": GUILD,
        "user_id": USER,
        "channel_id": CHANNEL,
        "content": "c",
        "due_at": lambda s: soon(),
    },
    "reminders.pending": {"guild_id": GUILD, "user_id": USER},
    "afk.claim_expired": {},
    "afk.clear": {"guild_id": GUILD, "member_id": OTHER_USER},
    "afk.complete_expiry": {"guild_id": GUILD, "member_id": USER},
    "afk.get": {"guild_id": GUILD, "member_id": USER},
    "afk.get_many": {"guild_id": GUILD, "member_ids": [USER]},
    "afk.release": {"guild_id": GUILD, "member_id": USER},
    "afk.set": {"guild_id": GUILD, "member_id": USER, "nickname": "n"},
    "levels.blacklist": {"guild_id": GUILD, "member_id": OTHER_USER},
    "levels.configure": {"guild_id": GUILD, "settings": {}},
    "levels.get": {"guild_id": GUILD, "member_id": USER},
    "levels.grant_message_xp": {"guild_id": GUILD, "member_id": USER},
    "levels.leaderboard": {"guild_id": GUILD},
    "levels.rank": {"guild_id": GUILD, "member_id": USER},
    "levels.reset": {"guild_id": GUILD, "member_id": OTHER_USER},
    "levels.set_level": {"guild_id": GUILD, "member_id": USER, "level": 2},
    "levels.set_xp": {"guild_id": GUILD, "member_id": USER, "xp": 5},
    "levels.settings_for": {"guild_id": GUILD},
    "levels.unblacklist": {"guild_id": GUILD, "member_id": USER},
    "starboard.add_star": {
        "guild_id": GUILD,
        "message_id": MESSAGE,
        "channel_id": CHANNEL,
        "author_id": USER,
        "user_id": OTHER_USER,
    },
    "starboard.configure": {"guild_id": GUILD, "channel_id": CHANNEL},
    "starboard.get": {"guild_id": GUILD},
    "starboard.get_message": {"guild_id": GUILD, "message_id": MESSAGE},
    "starboard.remove": {"guild_id": OTHER_GUILD},
    "starboard.remove_star": {
        "guild_id": GUILD,
        "message_id": MESSAGE,
        "channel_id": CHANNEL,
        "user_id": MOD,
    },
    "starboard.set_copy": {"guild_id": GUILD, "message_id": MESSAGE, "starboard_message_id": COPY},
    "web.create_session": {"user_id": USER},
    "web.get_user": {"user_id": USER},
    "web.grant_guild": {"user_id": USER, "guild_id": GUILD, "level": 2},
    "web.guilds_of": {"user_id": USER},
    "web.level_in": {"user_id": USER, "guild_id": GUILD},
    "web.revoke": {"token": "unknown"},
    "web.revoke_all": {"user_id": OTHER_USER},
    "web.revoke_guild": {"user_id": OTHER_USER, "guild_id": GUILD},
    "web.set_active": {"user_id": USER, "active": True},
    "web.sweep_expired": {},
    "web.upsert_user": {"id": USER, "username": "u"},
    "web.validate": {"token": lambda s: s.token},
    "privacy.erase_user": {"user_id": OTHER_USER},
    "privacy.export_user": {"user_id": USER},
    "rate_limits.hit": {"user_id": USER},
}

#: Arguments a hostile value of one parameter needs changed to be reached at all.
NEEDS = {
    ("permissions.add_rule", "module"): {"command": None},  # exactly one of command and module
}

#: Managers that are not swept: how their methods are tested instead.
NOT_SWEPT = {
    "reminders.start": "takes a callback (tests/test_reminders.py)",
    "reminders.stop": "takes a grace period in seconds (tests/test_reminders.py)",
}

MANAGERS = (
    "guilds",
    "cases",
    "case_types",
    "notes",
    "permissions",
    "snippets",
    "reminders",
    "afk",
    "levels",
    "starboard",
    "web",
    "privacy",
    "rate_limits",
)


def public_methods(db: botdata.Database) -> dict[str, Callable[..., Awaitable[Any]]]:
    """``"manager.method"`` -> bound method, for every public coroutine method of the managers."""
    found = {}
    for name in MANAGERS:
        manager = getattr(db, name)
        for attribute, method in inspect.getmembers(manager, inspect.iscoroutinefunction):
            if not attribute.startswith("_"):
                found[f"{name}.{attribute}"] = method
    return found


def kind_of(annotation: str) -> str | None:
    """The kind of hostile values for a parameter annotated ``annotation`` (None: none)."""
    kinds = {KINDS.get(part.strip()) for part in annotation.split("|")} - {None}
    assert len(kinds) <= 1, annotation
    return kinds.pop() if kinds else None


async def test_every_method_is_swept(botdata_db: botdata.Database) -> None:
    methods = set(public_methods(botdata_db))
    assert methods - set(NOT_SWEPT) == set(SWEEP), "give new methods a valid call in SWEEP"


@pytest.mark.parametrize("method", sorted(SWEEP))
async def test_sweep(botdata_db: botdata.Database, method: str) -> None:
    seeded = await seed(botdata_db)
    bound = public_methods(botdata_db)[method]
    valid = {
        name: value(seeded) if callable(value) else value for name, value in SWEEP[method].items()
    }
    attempts: list[tuple[str, dict[str, Any]]] = []
    for parameter in inspect.signature(bound).parameters.values():
        if (method, parameter.name) in EXEMPT:
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:  # update_config(**fields)
            attempts += [(f"prefix={excerpt(v)}", {"prefix": v}) for v in HOSTILE["text"]]
            attempts += [(f"mod_log_id={excerpt(v)}", {"mod_log_id": v}) for v in HOSTILE["number"]]
            continue
        kind = kind_of(str(parameter.annotation))
        if kind is None:
            continue
        needs = NEEDS.get((method, parameter.name), {})
        attempts += [
            (f"{parameter.name}={excerpt(v)}", {**needs, parameter.name: v}) for v in HOSTILE[kind]
        ]
    assert attempts or method in ("afk.claim_expired",), "nothing to sweep"
    failures = []
    before = await snapshot()
    stored = set(stored_problems(before))
    for label, hostile in attempts:
        try:
            await bound(**{**valid, **hostile})
        except BotdataError as exc:
            if exc.__cause__ is not None or isinstance(exc, DatabaseUnavailableError):
                # Translated from the driver by the database client's safety net: the
                # manager's own checks let the value through to the database.
                failures.append(f"{label}: reached the database ({exc!r:.200})")
            if len(str(exc)) > MESSAGE_LIMIT:
                failures.append(f"{label}: a message of {len(str(exc))} characters")
            after = await snapshot()
            if after != before:
                failures.append(f"{label}: {type(exc).__name__} after writing")
                before = after
        except Exception as exc:  # the point: nothing else may escape
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
            before = await snapshot()
        else:
            before = await snapshot()
        problems = set(stored_problems(before))
        failures += [f"{label}: stored {problem}" for problem in sorted(problems - stored)]
        stored = problems
    assert not failures, "\n".join(failures)


# Values at the bounds are stored --------------------------------------------------------------


async def test_values_at_the_bounds_are_stored_and_read_back(botdata_db: botdata.Database) -> None:
    deepest = deep(MAX_JSON_DEPTH)
    assert await botdata_db.guilds.set_setting(GUILD, "mod", "deep", deepest) == deepest
    largest = "x" * (MAX_JSON_SIZE - 2)
    assert await botdata_db.guilds.set_setting(GUILD, "mod", "large", largest) == largest
    metadata = {"k": deep(MAX_JSON_DEPTH - 1)}
    case = await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "r", metadata=metadata)
    assert case.metadata == metadata
    assert (await botdata_db.cases.get(GUILD, case.number)).metadata == metadata
    await botdata_db.cache.clear()
    assert await botdata_db.guilds.module_settings(GUILD, "mod") == {
        "deep": deepest,
        "large": largest,
    }
    # Text that is storable everywhere: other control characters, astral characters, pairs
    # written as one code point.
    text = "tab\there \x01 \U0001f600 \u200b end"
    note = await botdata_db.notes.add(GUILD, USER, MOD, text)
    assert (await botdata_db.notes.get(GUILD, note.number)).content == text


async def test_far_but_representable_times_are_accepted(botdata_db: botdata.Database) -> None:
    case = await botdata_db.cases.create(
        GUILD, USER, MOD, CaseType.TEMPBAN, "r", duration=timedelta(days=365 * 1000)
    )
    assert case.expires_at is not None
    assert case.expires_at.year > 3000
    last = UTC_MAX - timedelta(days=1)
    afk = await botdata_db.afk.set(GUILD, USER, nickname="n", until=last)
    assert afk.until == last
    reminder = await botdata_db.reminders.create(GUILD, USER, CHANNEL, "c", last)
    assert reminder.due_at == last
