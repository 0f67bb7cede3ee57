"""The schema's rules live in the database: a violation raises, writes nothing (both backends)."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from tortoise import Tortoise
from tortoise.exceptions import IntegrityError, ValidationError

from botdata.errors import DatabaseRejectedValueError
from botdata.models import (
    AFK,
    Case,
    CaseType,
    CustomCaseType,
    Guild,
    GuildConfig,
    GuildPermission,
    GuildSetting,
    Levels,
    Note,
    Reminder,
    Snippet,
    SnippetName,
    Starboard,
    StarboardMessage,
    StarboardStar,
    WebGuildPermission,
    WebSession,
    WebUser,
)
from botdata.models.base import MIN_SNOWFLAKE
from tests.support import table_names

GUILD = 100_000_000_000_000_001
OTHER_GUILD = 100_000_000_000_000_002
USER = 200_000_000_000_000_001
MOD = 200_000_000_000_000_002

pytestmark = pytest.mark.usefixtures("botdata_db")


async def make_guild(guild_id: int = GUILD) -> Guild:
    return await Guild.create(id=guild_id)


async def make_case(guild: Guild, number: int, **fields: object) -> Case:
    values: dict[str, object] = {
        "guild": guild,
        "number": number,
        "type": CaseType.WARN,
        "reason": "spam",
        "user_id": USER,
        "moderator_id": MOD,
    }
    values.update(fields)
    return await Case.create(**values)


async def raw_insert(sql_postgres: str, sql_sqlite: str, values: list[object]) -> None:
    """Insert with SQL, bypassing Tortoise's Python-side validation."""
    conn = Tortoise.get_connection("default")
    sql = sql_postgres if conn.capabilities.dialect == "postgres" else sql_sqlite
    await conn.execute_query(sql, values)


async def test_every_table_exists_and_starts_empty(botdata_db) -> None:
    conn = Tortoise.get_connection("default")
    for table in table_names():
        _, rows = await conn.execute_query(f'SELECT COUNT(*) AS n FROM "{table}"')
        assert rows[0]["n"] == 0, table


async def test_table_names_are_plural_snake_case_and_not_reserved() -> None:
    names = table_names()
    assert "case" not in names
    assert {"guilds", "guild_configs", "cases", "notes", "snippets", "reminders", "levels"} <= set(
        names
    )
    assert all(name == name.lower() for name in names)


async def test_unique_case_number_per_guild() -> None:
    guild = await make_guild()
    other = await make_guild(OTHER_GUILD)
    await make_case(guild, 1)
    await make_case(other, 1)  # same number, other guild: fine
    with pytest.raises(IntegrityError):
        await make_case(guild, 1)
    assert await Case.filter(guild_id=GUILD).count() == 1


async def test_unique_note_number_per_guild() -> None:
    guild = await make_guild()
    await Note.create(guild=guild, number=1, user_id=USER, moderator_id=MOD, content="x")
    with pytest.raises(IntegrityError):
        await Note.create(guild=guild, number=1, user_id=USER, moderator_id=MOD, content="y")
    assert await Note.all_objects.filter(guild_id=GUILD).count() == 1


async def test_snippet_names_unique_per_guild_ignoring_case_aliases_included() -> None:
    guild = await make_guild()
    first = await Snippet.create(guild=guild, content="a", author_id=USER)
    second = await Snippet.create(guild=guild, content="b", author_id=USER)
    await SnippetName.create(guild=guild, snippet=first, name="Rules", key="rules")
    with pytest.raises(IntegrityError):  # an alias of another snippet, other case
        await SnippetName.create(
            guild=guild, snippet=second, name="RULES", key="rules", is_alias=True
        )
    with pytest.raises(IntegrityError):  # a key that is not the lower-cased name
        await SnippetName.create(guild=guild, snippet=second, name="Faq", key="faq2")
    assert await SnippetName.filter(guild_id=GUILD).count() == 1


async def test_one_afk_row_per_guild_member() -> None:
    guild = await make_guild()
    await AFK.create(guild=guild, member_id=USER, nickname="n", reason="lunch")
    with pytest.raises(IntegrityError):
        await AFK.create(guild=guild, member_id=USER, nickname="n", reason="again")
    assert await AFK.all().count() == 1


async def test_one_levels_row_per_guild_member() -> None:
    guild = await make_guild()
    await Levels.create(guild=guild, member_id=USER, xp=10)
    with pytest.raises(IntegrityError):
        await Levels.create(guild=guild, member_id=USER, xp=20)
    assert await Levels.all().count() == 1


async def test_other_unique_constraints() -> None:
    guild = await make_guild()
    await CustomCaseType.create(guild=guild, name="mute", display_name="Mute")
    with pytest.raises(IntegrityError):
        await CustomCaseType.create(guild=guild, name="mute", display_name="Mute 2")
    await GuildSetting.create(guild=guild, module="levels", key="cooldown", value=60)
    with pytest.raises(IntegrityError):
        await GuildSetting.create(guild=guild, module="levels", key="cooldown", value=30)
    entry = await StarboardMessage.create(
        guild=guild, message_id=USER, channel_id=MOD, author_id=MOD
    )
    await StarboardStar.create(message=entry, user_id=USER)
    with pytest.raises(IntegrityError):
        await StarboardStar.create(message=entry, user_id=USER)
    user = await WebUser.create(id=USER, username="ann")
    await WebGuildPermission.create(user=user, guild=guild, level=3)
    with pytest.raises(IntegrityError):
        await WebGuildPermission.create(user=user, guild=guild, level=4)
    await WebSession.create(user=user, token_hash="a" * 64, expires_at=user.created_at)
    with pytest.raises(IntegrityError):
        await WebSession.create(user=user, token_hash="a" * 64, expires_at=user.created_at)
    assert await CustomCaseType.all().count() == 1
    assert await GuildSetting.all().count() == 1
    assert await StarboardStar.all().count() == 1
    assert await WebGuildPermission.all().count() == 1
    assert await WebSession.all().count() == 1


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("custom_case_types", "severity", 0),
        ("custom_case_types", "severity", 11),
        ("levels", "xp", -1),
        ("levels", "level", -1),
        ("starboards", "threshold", 0),
        ("web_guild_permissions", "level", 8),
        ("guilds", "case_count", -1),
    ],
)
async def test_check_constraints(table: str, column: str, value: int) -> None:
    guild = await make_guild()
    user = await WebUser.create(id=USER, username="ann")
    creators = {
        "custom_case_types": lambda: CustomCaseType.create(guild=guild, name="t", display_name="T"),
        "levels": lambda: Levels.create(guild=guild, member_id=USER),
        "starboards": lambda: Starboard.create(guild=guild, channel_id=MOD),
        "web_guild_permissions": lambda: WebGuildPermission.create(user=user, guild=guild),
        "guilds": lambda: Guild.get(id=GUILD),
    }
    await creators[table]()
    conn = Tortoise.get_connection("default")
    placeholder = "$1" if conn.capabilities.dialect == "postgres" else "?"
    with pytest.raises(IntegrityError):
        await conn.execute_query(f'UPDATE "{table}" SET "{column}" = {placeholder}', [value])
    _, found = await conn.execute_query(f'SELECT "{column}" AS v FROM "{table}"')
    assert found[0]["v"] != value


@pytest.mark.parametrize(
    ("model", "field", "limit"),
    [
        (Case, "reason", 2000),
        (Note, "content", 2000),
        (Snippet, "content", 4000),
        (Reminder, "content", 2000),
        (AFK, "reason", 500),
        (GuildConfig, "prefix", 10),
    ],
)
async def test_length_limits_are_enforced_by_the_database(model, field: str, limit: int) -> None:
    """SQLite ignores VARCHAR(n); the CHECK makes both backends refuse an over-long value."""
    guild = await make_guild()
    creators = {
        Case: lambda: make_case(guild, 1),
        Note: lambda: Note.create(
            guild=guild, number=1, user_id=USER, moderator_id=MOD, content="x"
        ),
        Snippet: lambda: Snippet.create(guild=guild, content="x", author_id=USER),
        Reminder: lambda: Reminder.create(
            guild=guild, user_id=USER, channel_id=MOD, content="x", due_at=guild.created_at
        ),
        AFK: lambda: AFK.create(guild=guild, member_id=USER, nickname="n", reason="x"),
        GuildConfig: lambda: GuildConfig.create(guild=guild, prefix="!"),
    }
    await creators[model]()
    table = model._meta.db_table
    conn = Tortoise.get_connection("default")
    placeholder = "$1" if conn.capabilities.dialect == "postgres" else "?"
    # PostgreSQL's VARCHAR(n) refuses first (a data error, which botdata's client raises as
    # DatabaseRejectedValueError); SQLite needs the CHECK.
    with pytest.raises((IntegrityError, DatabaseRejectedValueError)):
        await conn.execute_query(
            f'UPDATE "{table}" SET "{field}" = {placeholder}', ["x" * (limit + 1)]
        )
    await conn.execute_query(f'UPDATE "{table}" SET "{field}" = {placeholder}', ["x" * limit])
    with pytest.raises(ValidationError):  # Python refuses it too, before any SQL
        await model.filter().update(**{field: "x" * (limit + 1)})


async def test_bad_snowflake_raises_before_any_sql() -> None:
    guild = await make_guild()
    for bad in (0, -5, MIN_SNOWFLAKE - 1, 1 << 63, "123"):
        with pytest.raises(ValidationError):
            await make_case(guild, 1, user_id=bad)
    with pytest.raises(ValidationError):
        await Guild.create(id=42)
    assert await Case.all().count() == 0
    assert await Guild.all().count() == 1


async def test_deleting_a_guild_cascades_to_its_rows() -> None:
    guild = await make_guild()
    other = await make_guild(OTHER_GUILD)
    await GuildConfig.create(guild=guild)
    case_type = await CustomCaseType.create(guild=guild, name="mute", display_name="Mute")
    await make_case(guild, 1)
    await make_case(guild, 2, type=None, custom_type=case_type)
    await make_case(other, 1)
    await Note.create(guild=guild, number=1, user_id=USER, moderator_id=MOD, content="x")
    snippet = await Snippet.create(guild=guild, content="x", author_id=USER)
    await SnippetName.create(guild=guild, snippet=snippet, name="x", key="x")
    await Levels.create(guild=guild, member_id=USER)
    await AFK.create(guild=guild, member_id=USER, nickname="n", reason="r")
    await GuildPermission.create(
        guild=guild, type="member", access="blacklist", target_id=USER, command="ban"
    )
    await GuildSetting.create(guild=guild, module="m", key="k", value={"a": 1})
    await guild.delete()
    for model in (
        GuildConfig,
        CustomCaseType,
        Note,
        Snippet,
        SnippetName,
        Levels,
        AFK,
        GuildPermission,
        GuildSetting,
    ):
        assert await model.all().count() == 0, model.__name__
    assert await Case.filter(guild_id=GUILD).count() == 0
    assert await Case.filter(guild_id=OTHER_GUILD).count() == 1


async def test_timestamps_are_utc_aware_and_updated_on_save() -> None:
    guild = await make_guild()
    config = await GuildConfig.create(guild=guild)
    assert config.created_at.tzinfo is not None
    assert config.created_at.utcoffset() == timedelta(0)
    first_update = config.updated_at
    config.prefix = "?"
    await config.save()
    fresh = await GuildConfig.get(guild_id=GUILD)
    assert fresh.updated_at > first_update
    assert fresh.created_at == config.created_at
    assert fresh.updated_at.tzinfo is not None
    assert fresh.created_at.astimezone(timezone.utc) == fresh.created_at


async def test_soft_deleted_rows_are_left_out_unless_asked_for() -> None:
    guild = await make_guild()
    kept = await Note.create(guild=guild, number=1, user_id=USER, moderator_id=MOD, content="a")
    gone = await Note.create(guild=guild, number=2, user_id=USER, moderator_id=MOD, content="b")
    await Note.filter(id=gone.id).update(is_deleted=True, deleted_by=MOD)
    assert [n.id for n in await Note.filter(guild_id=GUILD)] == [kept.id]
    assert await Note.filter(id=gone.id).first() is None
    assert {n.id for n in await Note.all_objects.filter(guild_id=GUILD)} == {kept.id, gone.id}
