"""Hostile input refused with typed errors (issue #9 points 11, 15, 16, 17 and 28), both backends.

Every value a caller hands a manager either works or is refused with a typed error from
:mod:`botdata.errors` that names the argument, and a refusal writes nothing: text with a NUL
character or a surrogate code point, numbers no column can hold, JSON nested too deep or too
large, durations and times beyond ``datetime``'s range, values too big to print.

- ``test_refused``: a table of hostile calls and the exact error each must raise, with the
  argument's name in a short message, and no row written (a snapshot of every table before and
  after);
- ``test_answered``: hostile values that are answers, not errors (a number no row can have is
  "not found": ``remove_rule`` answers False, an offset past the end an empty page...);
- the shared checks themselves (excerpts, the JSON bounds).

Every call here must leave the database as it was, so one seeded guild serves the whole module.
``tests/test_hostile_sweep.py`` runs every manager method with every hostile value of the kinds
its parameters take.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import botdata
from botdata.errors import (
    BotdataError,
    CaseNotFoundError,
    InvalidAFKExpiryError,
    InvalidCaseMetadataError,
    InvalidExpiryError,
    InvalidIPAddressError,
    InvalidLevelError,
    InvalidNumberError,
    InvalidPermissionLevelError,
    InvalidRateLimitScopeError,
    InvalidReminderTimeError,
    InvalidSeverityError,
    InvalidSnowflakeError,
    InvalidStarThresholdError,
    InvalidTimestampError,
    InvalidXPError,
    NoteNotFoundError,
    ReminderNotFoundError,
    SettingNotSerializableError,
    TooManyRolesError,
    UnstorableTextError,
)
from botdata.managers.checks import (
    EXCERPT,
    MAX_JSON_DEPTH,
    MAX_JSON_SIZE,
    MAX_NUMBER,
    OptionalSnowflake,
    Snowflake,
    checked,
    excerpt,
    json_text,
)
from botdata.models import CaseType
from botdata.testing.services import reset
from tests.hostile_support import (
    BEFORE_MIN,
    CHANNEL,
    GUILD,
    MEGABYTE,
    MESSAGE_LIMIT,
    MOD,
    NUL,
    PAST_MAX,
    ROLE,
    SURROGATE,
    USER,
    UTC_MAX,
    UTC_MIN,
    Free,
    Seeded,
    deep,
    free_setting,
    seed,
    snapshot,
    soon,
)


@pytest.fixture(scope="module")
async def seeded(
    botdata_session_db: botdata.Database,
) -> AsyncIterator[tuple[botdata.Database, Seeded]]:
    """The handle on a database holding :func:`~tests.hostile_support.seed`'s guild, for the
    whole module (no test here may change it)."""
    await reset(botdata_session_db)
    await botdata_session_db.cache.clear()
    yield botdata_session_db, await seed(botdata_session_db)
    await reset(botdata_session_db)
    await botdata_session_db.cache.clear()


# Refusals ---------------------------------------------------------------------------

Call = Callable[[botdata.Database, Seeded], Awaitable[Any]]


@dataclass(frozen=True)
class Refusal:
    name: str
    call: Call
    error: type[BotdataError]
    #: What the message must name (the argument).
    names: str


def _text_calls(value: str) -> list[tuple[str, Call, str]]:
    """Every text argument of every manager, given ``value``: (what, call, field named)."""
    g, u, m = GUILD, USER, MOD
    d = {"actor_id": USER, "is_moderator": True}
    return [
        ("case reason", lambda db, s: db.cases.create(g, u, m, CaseType.WARN, value), "reason"),
        ("case edit", lambda db, s: db.cases.edit(g, 1, reason=value, editor_id=m), "reason"),
        ("void reason", lambda db, s: db.cases.void(g, 1, by=m, reason=value), "void reason"),
        (
            "case type of a case",
            lambda db, s: db.cases.create(g, u, m, value, "r"),
            "case type name",
        ),
        (
            "case search type",
            lambda db, s: db.cases.search(g, case_type=value),
            "case type name",
        ),
        (
            "metadata value",
            lambda db, s: db.cases.create(g, u, m, CaseType.WARN, "r", metadata={"k": [value]}),
            "metadata['k'][0]",
        ),
        (
            "metadata key",
            lambda db, s: db.cases.create(g, u, m, CaseType.WARN, "r", metadata={value: 1}),
            "metadata",
        ),
        (
            "case type name",
            lambda db, s: db.case_types.create(g, value, display_name="x"),
            "case type name",
        ),
        (
            "case type display name",
            lambda db, s: db.case_types.create(g, "x", display_name=value),
            "display_name",
        ),
        (
            "case type description",
            lambda db, s: db.case_types.create(g, "x", display_name="x", description=value),
            "description",
        ),
        ("case type get", lambda db, s: db.case_types.get(g, value), "case type name"),
        ("case type delete", lambda db, s: db.case_types.delete(g, value), "case type name"),
        ("note", lambda db, s: db.notes.add(g, u, m, value), "note content"),
        ("note edit", lambda db, s: db.notes.edit(g, 1, content=value, editor_id=m), "note"),
        ("snippet name", lambda db, s: db.snippets.create(g, value, "c", author_id=u), "name"),
        (
            "snippet content",
            lambda db, s: db.snippets.create(g, "x", value, author_id=u),
            "content",
        ),
        ("snippet edit", lambda db, s: db.snippets.edit(g, "rules", value, **d), "content"),
        ("snippet get", lambda db, s: db.snippets.get(g, value), "name"),
        ("snippet use", lambda db, s: db.snippets.use(g, value), "name"),
        ("snippet alias", lambda db, s: db.snippets.add_alias(g, "rules", value, **d), "alias"),
        ("snippet unalias", lambda db, s: db.snippets.remove_alias(g, value, **d), "alias"),
        ("snippet search", lambda db, s: db.snippets.list(g, query=value), "search"),
        ("snippet delete", lambda db, s: db.snippets.delete(g, value, **d), "name"),
        ("snippet lock", lambda db, s: db.snippets.set_locked(g, value, True, **d), "name"),
        (
            "snippet claim",
            lambda db, s: db.snippets.claim(g, value, new_author_id=m, author_present=False),
            "name",
        ),
        (
            "reminder",
            lambda db, s: db.reminders.create(g, u, CHANNEL, value, soon()),
            "reminder content",
        ),
        ("afk reason", lambda db, s: db.afk.set(g, u, nickname="n", reason=value), "reason"),
        ("afk nickname", lambda db, s: db.afk.set(g, u, nickname=value), "nickname"),
        ("prefix", lambda db, s: db.guilds.update_config(g, prefix=value), "prefix"),
        ("setting module", lambda db, s: db.guilds.set_setting(g, value, "k", 1), "module"),
        ("setting key", lambda db, s: db.guilds.set_setting(g, "m", value, 1), "key"),
        (
            "setting value",
            lambda db, s: db.guilds.set_setting(g, "m", "k", {"a": ["b", value]}),
            "setting m.k: value['a'][1]",
        ),
        (
            "setting value key",
            lambda db, s: db.guilds.set_setting(g, "m", "k", {value: 1}),
            "setting m.k",
        ),
        ("setting string", lambda db, s: db.guilds.set_setting(g, "m", "k", value), "setting m.k"),
        ("setting read", lambda db, s: db.guilds.get_setting(g, "mod", value), "key"),
        ("setting delete", lambda db, s: db.guilds.delete_setting(g, value, "key"), "module"),
        ("module settings", lambda db, s: db.guilds.module_settings(g, value), "module"),
        (
            "rule command",
            lambda db, s: db.permissions.add_rule(
                g, access="blacklist", target_type="member", target_id=u, command=value
            ),
            "command",
        ),
        (
            "rule module",
            lambda db, s: db.permissions.add_rule(
                g, access="blacklist", target_type="member", target_id=u, module=value
            ),
            "module",
        ),
        (
            "rule target name",
            lambda db, s: db.permissions.add_rule(
                g,
                access="blacklist",
                target_type="member",
                target_id=u,
                command="ban",
                target_name=value,
            ),
            "target_name",
        ),
        ("web username", lambda db, s: db.web.upsert_user(u, value), "username"),
        ("web avatar", lambda db, s: db.web.upsert_user(u, "n", avatar=value), "avatar"),
        ("web email", lambda db, s: db.web.upsert_user(u, "n", email=f"{value}@x.io"), "email"),
        (
            "starboard emoji",
            lambda db, s: db.starboard.configure(g, channel_id=CHANNEL, emoji=value),
            "emoji",
        ),
        ("rate-limit scope", lambda db, s: db.rate_limits.hit(u, scope=value), "scope"),
    ]


def _refusals() -> list[Refusal]:
    refusals = [
        Refusal(f"{what}: {label}", call, UnstorableTextError, names)
        for label, value in (("NUL", NUL), ("surrogate", SURROGATE))
        for what, call, names in _text_calls(value)
    ]
    # An IP address (an IPv6 scope may hold any text) is refused as not an IP address.
    for label, value in (("NUL", "fe80::1%\x00"), ("surrogate", "fe80::1%\ud800")):
        refusals.append(
            Refusal(
                f"ip address: {label}",
                lambda db, s, v=value: db.web.create_session(USER, ip_address=v),
                UnstorableTextError,
                "ip_address",
            )
        )
    refusals.append(
        Refusal(
            "ip address: a scope too long to store",
            lambda db, s: db.web.create_session(USER, ip_address="fe80::1%" + "e" * 60),
            InvalidIPAddressError,
            "IP address",
        )
    )
    g, u, m = GUILD, USER, MOD
    # Numbers no row can have.
    for number in (MAX_NUMBER + 1, 2**63, 10**5000):
        label = f"number of {number.bit_length()} bits"
        for what, call in (
            ("case get", lambda db, s, n=number: db.cases.get(g, n)),
            ("case history", lambda db, s, n=number: db.cases.history(g, n)),
            ("case edit", lambda db, s, n=number: db.cases.edit(g, n, reason="r", editor_id=m)),
            ("case void", lambda db, s, n=number: db.cases.void(g, n, by=m, reason="r")),
            ("case expiry", lambda db, s, n=number: db.cases.complete_expiry(g, n)),
            ("case release", lambda db, s, n=number: db.cases.release(g, n)),
        ):
            refusals.append(Refusal(f"{what}: {label}", call, CaseNotFoundError, "case"))
        for what, call in (
            ("note get", lambda db, s, n=number: db.notes.get(g, n)),
            ("note edit", lambda db, s, n=number: db.notes.edit(g, n, content="c", editor_id=m)),
            ("note delete", lambda db, s, n=number: db.notes.delete(g, n, by=m)),
        ):
            refusals.append(Refusal(f"{what}: {label}", call, NoteNotFoundError, "note"))
        refusals += [
            Refusal(
                f"reminder cancel: {label}",
                lambda db, s, n=number: db.reminders.cancel(g, n, user_id=u),
                ReminderNotFoundError,
                "reminder",
            ),
            Refusal(
                f"level: {label}",
                lambda db, s, n=number: db.levels.set_level(g, u, n),
                InvalidLevelError,
                "level",
            ),
            Refusal(
                f"threshold: {label}",
                lambda db, s, n=number: db.starboard.configure(g, channel_id=CHANNEL, threshold=n),
                InvalidStarThresholdError,
                "threshold",
            ),
            Refusal(
                f"severity: {label}",
                lambda db, s, n=number: db.case_types.create(g, "x", display_name="x", severity=n),
                InvalidSeverityError,
                "severity",
            ),
            Refusal(
                f"permission level: {label}",
                lambda db, s, n=number: db.permissions.set_level_role(g, n, ROLE),
                InvalidPermissionLevelError,
                "level",
            ),
            Refusal(
                f"dashboard level: {label}",
                lambda db, s, n=number: db.web.grant_guild(u, g, n),
                InvalidPermissionLevelError,
                "level",
            ),
        ]
    refusals += [
        Refusal(
            f"guild id: number of {number.bit_length()} bits",
            lambda db, s, n=number: db.cases.create(n, u, m, CaseType.WARN, "r"),
            InvalidSnowflakeError,
            "guild_id",
        )
        for number in (2**63, 10**5000)
    ]
    refusals += [
        Refusal(
            f"xp: number of {number.bit_length()} bits",
            lambda db, s, n=number: db.levels.set_xp(g, u, n),
            InvalidXPError,
            "xp",
        )
        for number in (2**53, 2**63, 10**5000)
    ]
    refusals += [
        Refusal("case get: -1", lambda db, s: db.cases.get(g, -1), InvalidNumberError, "number"),
        Refusal("note get: -1", lambda db, s: db.notes.get(g, -1), InvalidNumberError, "number"),
        Refusal(
            "reminder cancel: -1",
            lambda db, s: db.reminders.cancel(g, -1, user_id=u),
            ReminderNotFoundError,
            "reminder",
        ),
        Refusal(
            "user roles: more than a guild has",
            lambda db, s: db.cases.create(
                g, u, m, CaseType.WARN, "r", user_roles=range(ROLE, ROLE + 100_000)
            ),
            TooManyRolesError,
            "user_roles",
        ),
        Refusal(
            "rate-limit scope: 1 MB",
            lambda db, s: db.rate_limits.hit(u, scope=MEGABYTE),
            InvalidRateLimitScopeError,
            "scope",
        ),
    ]
    # JSON: too deep, too large.
    for label, value in (
        ("depth 250", deep(250)),
        ("depth 5000", deep(5000)),
        (f"depth {MAX_JSON_DEPTH + 1}", deep(MAX_JSON_DEPTH + 1)),
        ("1 MB", {"big": MEGABYTE}),
        ("64 KiB and a byte", "x" * (MAX_JSON_SIZE - 1)),
    ):
        refusals += [
            Refusal(
                f"setting value: {label}",
                lambda db, s, v=value: db.guilds.set_setting(g, "mod", "key", v),
                SettingNotSerializableError,
                "setting mod.key",
            ),
            Refusal(
                f"registered setting value: {label}",
                lambda db, s, v=value: free_setting(db, v),
                SettingNotSerializableError,
                "setting free.data",
            ),
            Refusal(
                f"case metadata: {label}",
                lambda db, s, v=value: db.cases.create(
                    g, u, m, CaseType.WARN, "r", metadata={"k": v}
                ),
                InvalidCaseMetadataError,
                "metadata",
            ),
        ]
    # Durations and times beyond datetime's range.
    refusals += [
        Refusal(
            f"case duration: {label}",
            lambda db, s, v=value: db.cases.create(g, u, m, CaseType.TEMPBAN, "r", duration=v),
            InvalidExpiryError,
            "duration",
        )
        for label, value in (
            ("timedelta.max", timedelta.max),
            ("999999999 days", timedelta(days=999_999_999)),
        )
    ]
    for label, when in (("past datetime.max in UTC", PAST_MAX), ("before year 1", BEFORE_MIN)):
        refusals += [
            Refusal(
                f"case expires_at: {label}",
                lambda db, s, w=when: db.cases.create(g, u, m, CaseType.TEMPBAN, "r", expires_at=w),
                InvalidExpiryError,
                "expires_at",
            ),
            Refusal(
                f"claim_due now: {label}",
                lambda db, s, w=when: db.cases.claim_due(w),
                InvalidExpiryError,
                "now",
            ),
            Refusal(
                f"afk until: {label}",
                lambda db, s, w=when: db.afk.set(g, u, nickname="n", until=w),
                InvalidAFKExpiryError,
                "until",
            ),
            Refusal(
                f"afk claim now: {label}",
                lambda db, s, w=when: db.afk.claim_expired(w),
                InvalidTimestampError,
                "now",
            ),
            Refusal(
                f"reminder due_at: {label}",
                lambda db, s, w=when: db.reminders.create(g, u, CHANNEL, "c", w),
                InvalidReminderTimeError,
                "due_at",
            ),
            Refusal(
                f"rule until: {label}",
                lambda db, s, w=when: db.permissions.add_rule(
                    g, access="ignore", target_type="member", target_id=u, command="x", until=w
                ),
                InvalidExpiryError,
                "until",
            ),
            Refusal(
                f"is_allowed now: {label}",
                lambda db, s, w=when: db.permissions.is_allowed(
                    g,
                    command="ban",
                    module=None,
                    user_id=u,
                    role_ids=(),
                    channel_id=CHANNEL,
                    category_id=None,
                    now=w,
                ),
                InvalidExpiryError,
                "now",
            ),
            Refusal(
                f"xp now: {label}",
                lambda db, s, w=when: db.levels.grant_message_xp(g, u, now=w),
                InvalidTimestampError,
                "now",
            ),
            Refusal(
                f"session sweep now: {label}",
                lambda db, s, w=when: db.web.sweep_expired(w),
                InvalidTimestampError,
                "now",
            ),
        ]
    refusals += [
        Refusal(
            "claim_due lease: timedelta.max",
            lambda db, s: db.cases.claim_due(datetime.now(timezone.utc), lease=timedelta.max),
            InvalidExpiryError,
            "lease",
        ),
        Refusal(
            "claim_due now: the last moment (its lease ends after it)",
            lambda db, s: db.cases.claim_due(UTC_MAX),
            InvalidExpiryError,
            "lease",
        ),
        Refusal(
            "afk claim lease: timedelta.max",
            lambda db, s: db.afk.claim_expired(lease=timedelta.max),
            InvalidTimestampError,
            "lease",
        ),
        Refusal(
            "afk claim now: the last moment (its lease ends after it)",
            lambda db, s: db.afk.claim_expired(UTC_MAX),
            InvalidTimestampError,
            "lease",
        ),
        Refusal(
            "xp now: the first moment (its cooldown starts before it)",
            lambda db, s: db.levels.grant_message_xp(g, u, now=UTC_MIN),
            InvalidTimestampError,
            "now",
        ),
    ]
    return refusals


REFUSALS = _refusals()


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
async def test_refused(seeded: tuple[botdata.Database, Seeded], refusal: Refusal) -> None:
    db, made = seeded
    before = await snapshot()
    with pytest.raises(BotdataError) as raised:
        await refusal.call(db, made)
    assert type(raised.value) is refusal.error, repr(raised.value)[:300]
    message = str(raised.value)
    assert refusal.names in message
    assert len(message) <= MESSAGE_LIMIT, message[:MESSAGE_LIMIT]
    assert await snapshot() == before


async def test_registering_settings_with_unstorable_names_is_refused(
    seeded: tuple[botdata.Database, Seeded],
) -> None:
    db, _ = seeded
    for module, key in ((NUL, "k"), ("m", SURROGATE)):
        with pytest.raises(UnstorableTextError, match=r"setting (module|key)"):
            db.guilds.register_settings(module, key, Free)


# Hostile values with an answer ---------------------------------------------------------------


async def test_answered(seeded: tuple[botdata.Database, Seeded]) -> None:
    db, made = seeded
    assert (await db.web.validate(made.token)).id == USER
    before = await snapshot()
    everything = await db.cases.search(GUILD)
    assert [case.number for case in everything] == [2, 1]
    for huge in (MAX_NUMBER + 1, 2**63, 10**5000):
        # A page "before" a number past every number is the first page.
        assert await db.cases.search(GUILD, before=huge) == everything
        assert await db.cases.for_user(GUILD, USER, before=huge) == everything
        assert [n.number for n in await db.notes.for_user(GUILD, USER, before=huge)] == [1]
        # An offset past every row is an empty page.
        assert await db.snippets.list(GUILD, offset=huge) == []
        assert await db.levels.leaderboard(GUILD, offset=huge) == []
    for no_rule in (0, -1, 2**63, 10**5000, "1", None):
        assert await db.permissions.remove_rule(GUILD, no_rule) is False
    for token in (NUL, SURROGATE, made.token + "\ud800"):
        assert await db.web.validate(token) is None
        assert await db.web.revoke(token) is False
    assert await snapshot() == before


# The checks themselves ------------------------------------------------------------------------


def test_excerpt_is_bounded_for_any_value() -> None:
    assert excerpt("short") == "'short'"
    assert excerpt(12) == "12"
    for value in (MEGABYTE, 10**5000, deep(5000), [MEGABYTE] * 1000, {MEGABYTE: MEGABYTE}, NUL):
        shown = excerpt(value)
        assert len(shown) <= EXCERPT, shown
        assert "\x00" not in shown
    assert excerpt(SURROGATE).encode()  # printable: surrogates are escaped


def test_json_bounds_are_inclusive() -> None:
    # The deepest value accepted: MAX_JSON_DEPTH nested containers.
    assert json.loads(json_text(deep(MAX_JSON_DEPTH), "v", SettingNotSerializableError))
    with pytest.raises(SettingNotSerializableError, match="deeper than 32"):
        json_text(deep(MAX_JSON_DEPTH + 1), "v", SettingNotSerializableError)
    # The largest value accepted: MAX_JSON_SIZE bytes of JSON text (a string and its quotes).
    largest = "x" * (MAX_JSON_SIZE - 2)
    assert len(json_text(largest, "v", SettingNotSerializableError)) == MAX_JSON_SIZE
    with pytest.raises(SettingNotSerializableError, match="larger than 65536 bytes"):
        json_text(largest + "x", "v", SettingNotSerializableError)
    # Non-ASCII counts as stored: escaped, six bytes a character.
    with pytest.raises(SettingNotSerializableError, match="larger than"):
        json_text("é" * (MAX_JSON_SIZE // 6 + 1), "v", SettingNotSerializableError)
    # A value that contains itself is refused as too deep, not looped over.
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(SettingNotSerializableError, match="deeper"):
        json_text(looped, "v", SettingNotSerializableError)


class _Declared:
    """Methods whose ids @checked checks (positional, keyword-only, optional, with a default)."""

    @checked
    async def call(
        self,
        guild_id: Snowflake,
        text: str = "",
        *,
        user_id: Snowflake = 1 << 40,
        by: OptionalSnowflake = None,
    ) -> tuple[int, int, int | None]:
        return guild_id, user_id, by


async def test_checked_refuses_each_declared_id_by_name() -> None:
    declared = _Declared()
    good = 1 << 41
    assert await declared.call(good, by=good) == (good, 1 << 40, good)
    assert await declared.call(good, "x", user_id=good) == (good, good, None)
    for kwargs, name in (
        ({"guild_id": 0}, "guild_id"),
        ({"guild_id": True}, "guild_id"),
        ({"guild_id": good, "user_id": "1"}, "user_id"),
        ({"guild_id": good, "by": 1 << 63}, "by"),
    ):
        with pytest.raises(InvalidSnowflakeError, match=rf"^{name}"):
            await declared.call(**kwargs)
    with pytest.raises(InvalidSnowflakeError, match=r"^guild_id"):
        await declared.call(None)  # only OptionalSnowflake takes None
    with pytest.raises(InvalidSnowflakeError, match=r"^guild_id"):
        await declared.call(-5, user_id=0)  # checked in the order of the parameters


def test_checked_needs_a_declared_check() -> None:
    async def plain(guild_id: int) -> int:
        return guild_id

    with pytest.raises(TypeError, match="no argument with a Check"):
        checked(plain)
