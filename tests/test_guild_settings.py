"""db.guilds dynamic settings: JSON values per (guild, module, key), optional pydantic models."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

import botdata
from botdata.errors import (
    InvalidSettingNameError,
    InvalidSettingValueError,
    InvalidSnowflakeError,
    SettingNotSerializableError,
)
from botdata.models import Guild, GuildSetting

GUILD = 1 << 40
OTHER_GUILD = (1 << 40) + 1
USER = 1 << 43
CHANNEL = 1 << 41


class Welcome(BaseModel):
    channel_id: int
    text: str = Field(min_length=1, max_length=100)
    ping: bool = False


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True)

    per_minute: int


async def setting_rows() -> list[dict[str, Any]]:
    return await GuildSetting.all().order_by("id").values("guild_id", "module", "key", "value")


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None], "b": {"c": "d"}},
        [1, "two", False],
        "plain text",
        '{"looks": "like json"}',
        "",
        42,
        -1.25,
        True,
        False,
        0,
    ],
)
async def test_set_and_get_json_values(botdata_db: botdata.Database, value: Any) -> None:
    assert await botdata_db.guilds.set_setting(GUILD, "fun", "value", value) == value
    got = await botdata_db.guilds.get_setting(GUILD, "fun", "value")
    assert (got, type(got)) == (value, type(value))
    await botdata_db.cache.clear()  # and from the database, not the cache
    got = await botdata_db.guilds.get_setting(GUILD, "fun", "value")
    assert (got, type(got)) == (value, type(value))
    assert (await GuildSetting.get(guild_id=GUILD, module="fun", key="value")).value == value


async def test_tuple_comes_back_as_list(botdata_db: botdata.Database) -> None:
    assert await botdata_db.guilds.set_setting(GUILD, "fun", "pair", (1, 2)) == [1, 2]
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "pair") == [1, 2]


async def test_missing_setting_gives_default_without_writing(botdata_db: botdata.Database) -> None:
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "nope") is None
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "nope", default=7) == 7
    assert await botdata_db.guilds.module_settings(GUILD, "fun") == {}
    assert await Guild.all().count() == 0


async def test_set_creates_guild_and_upserts_one_row(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.set_setting(GUILD, "fun", "limit", 1, updated_by=USER)
    await botdata_db.guilds.set_setting(GUILD, "fun", "limit", 2)
    assert await Guild.filter(id=GUILD).count() == 1
    rows = await GuildSetting.filter(guild_id=GUILD).values("value", "created_by", "updated_by")
    assert rows == [{"value": 2, "created_by": USER, "updated_by": None}]
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "limit") == 2


async def test_concurrent_sets_leave_one_row(botdata_db: botdata.Database) -> None:
    await asyncio.gather(*(botdata_db.guilds.set_setting(GUILD, "fun", "n", i) for i in range(20)))
    rows = await GuildSetting.filter(guild_id=GUILD).values_list("value", flat=True)
    assert len(rows) == 1
    assert rows[0] in range(20)
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "n") == rows[0]


async def test_settings_are_per_guild_and_module(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.set_setting(GUILD, "fun", "a", 1)
    await botdata_db.guilds.set_setting(GUILD, "fun", "b", "x")
    await botdata_db.guilds.set_setting(GUILD, "levels", "a", 3)
    await botdata_db.guilds.set_setting(OTHER_GUILD, "fun", "a", 4)
    assert await botdata_db.guilds.module_settings(GUILD, "fun") == {"a": 1, "b": "x"}
    assert await botdata_db.guilds.module_settings(GUILD, "levels") == {"a": 3}
    assert await botdata_db.guilds.module_settings(OTHER_GUILD, "fun") == {"a": 4}
    assert await botdata_db.guilds.get_setting(OTHER_GUILD, "levels", "a") is None


async def test_change_is_seen_immediately(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.set_setting(GUILD, "fun", "a", 1)
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "a") == 1  # cached now
    assert (
        botdata_db.cache.hot_get(botdata_db.cache.key("guild_settings", guild_id=GUILD)) is not None
    )
    await botdata_db.guilds.set_setting(GUILD, "fun", "a", 2)
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "a") == 2
    assert await botdata_db.guilds.delete_setting(GUILD, "fun", "a") is True
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "a") is None
    assert await botdata_db.guilds.module_settings(GUILD, "fun") == {}


async def test_returned_values_are_copies(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.set_setting(GUILD, "fun", "list", [1, 2])
    value = await botdata_db.guilds.get_setting(GUILD, "fun", "list")
    value.append(3)
    (await botdata_db.guilds.module_settings(GUILD, "fun"))["list"].append(4)
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "list") == [1, 2]


async def test_delete_setting(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.set_setting(GUILD, "fun", "a", 1)
    await botdata_db.guilds.set_setting(GUILD, "fun", "b", 2)
    assert await botdata_db.guilds.delete_setting(GUILD, "fun", "a") is True
    assert await botdata_db.guilds.delete_setting(GUILD, "fun", "a") is False
    assert await botdata_db.guilds.delete_setting(OTHER_GUILD, "fun", "b") is False
    assert await GuildSetting.filter(guild_id=GUILD).values_list("key", flat=True) == ["b"]


@pytest.mark.parametrize(
    "value", [{1, 2}, object(), math.nan, math.inf, {"x": b"bytes"}, None, [None, {"a": {1j}}]]
)
async def test_unserialisable_value_is_refused(botdata_db: botdata.Database, value: Any) -> None:
    await botdata_db.guilds.set_setting(GUILD, "fun", "a", 1)
    before = await setting_rows()
    with pytest.raises(SettingNotSerializableError):
        await botdata_db.guilds.set_setting(GUILD, "fun", "a", value)
    with pytest.raises(SettingNotSerializableError):
        await botdata_db.guilds.set_setting(OTHER_GUILD, "fun", "a", value)
    assert await setting_rows() == before
    assert await Guild.filter(id=OTHER_GUILD).count() == 0
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "a") == 1


@pytest.mark.parametrize(
    ("module", "key"),
    [("", "a"), ("fun", ""), ("m" * 101, "a"), ("fun", "k" * 101), (None, "a"), ("fun", 3)],
)
async def test_bad_names_are_refused(botdata_db: botdata.Database, module: Any, key: Any) -> None:
    with pytest.raises(InvalidSettingNameError):
        await botdata_db.guilds.set_setting(GUILD, module, key, 1)
    with pytest.raises(InvalidSettingNameError):
        await botdata_db.guilds.get_setting(GUILD, module, key)
    with pytest.raises(InvalidSettingNameError):
        await botdata_db.guilds.delete_setting(GUILD, module, key)
    with pytest.raises(InvalidSettingNameError):
        botdata_db.guilds.register_settings(module, key, Welcome)
    assert await GuildSetting.all().count() == 0
    assert await Guild.all().count() == 0


async def test_name_of_100_characters_is_accepted(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.set_setting(GUILD, "m" * 100, "k" * 100, 1)
    assert await botdata_db.guilds.module_settings(GUILD, "m" * 100) == {"k" * 100: 1}


async def test_bad_ids_are_refused(botdata_db: botdata.Database) -> None:
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.set_setting(5, "fun", "a", 1)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.set_setting(GUILD, "fun", "a", 1, updated_by=5)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.get_setting(5, "fun", "a")
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.guilds.delete_setting(5, "fun", "a")
    assert await GuildSetting.all().count() == 0
    assert await Guild.all().count() == 0


# registered models ------------------------------------------------------------------------------


async def test_registered_model_validates_and_parses(botdata_db: botdata.Database) -> None:
    botdata_db.guilds.register_settings("welcome_parse", "message", Welcome)
    stored = await botdata_db.guilds.set_setting(
        GUILD, "welcome_parse", "message", {"channel_id": CHANNEL, "text": "hi"}
    )
    assert stored == Welcome(channel_id=CHANNEL, text="hi")
    value = await botdata_db.guilds.get_setting(GUILD, "welcome_parse", "message")
    assert isinstance(value, Welcome)
    assert value == Welcome(channel_id=CHANNEL, text="hi", ping=False)
    # stored as the model's JSON, defaults included
    row = await GuildSetting.get(guild_id=GUILD, module="welcome_parse", key="message")
    assert row.value == {"channel_id": CHANNEL, "text": "hi", "ping": False}
    # an instance is accepted too
    await botdata_db.guilds.set_setting(
        GUILD, "welcome_parse", "message", Welcome(channel_id=CHANNEL, text="yo", ping=True)
    )
    assert await botdata_db.guilds.module_settings(GUILD, "welcome_parse") == {
        "message": Welcome(channel_id=CHANNEL, text="yo", ping=True)
    }
    # other keys of the module stay free-form JSON
    await botdata_db.guilds.set_setting(GUILD, "welcome_parse", "note", {"any": "json"})
    assert await botdata_db.guilds.get_setting(GUILD, "welcome_parse", "note") == {"any": "json"}


@pytest.mark.parametrize(
    "value",
    [
        {"channel_id": CHANNEL},
        {"channel_id": "not a number", "text": "hi"},
        {"channel_id": CHANNEL, "text": ""},
        {"channel_id": CHANNEL, "text": "x" * 101},
        "hello",
        42,
    ],
)
async def test_registered_model_refuses_invalid_value(
    botdata_db: botdata.Database, value: Any
) -> None:
    botdata_db.guilds.register_settings("welcome_invalid", "message", Welcome)
    await botdata_db.guilds.set_setting(
        GUILD, "welcome_invalid", "message", {"channel_id": CHANNEL, "text": "hi"}
    )
    before = await setting_rows()
    with pytest.raises(InvalidSettingValueError):
        await botdata_db.guilds.set_setting(GUILD, "welcome_invalid", "message", value)
    with pytest.raises(InvalidSettingValueError):
        await botdata_db.guilds.set_setting(OTHER_GUILD, "welcome_invalid", "message", value)
    assert await setting_rows() == before
    assert await Guild.filter(id=OTHER_GUILD).count() == 0


async def test_frozen_model_values_are_parsed_once_per_change(botdata_db: botdata.Database) -> None:
    """Read on every message: a frozen model's value is validated once and then reused until
    the setting changes; other models give a fresh instance each time."""
    botdata_db.guilds.register_settings("memo", "limits", Limits)
    botdata_db.guilds.register_settings("memo", "welcome", Welcome)
    await botdata_db.guilds.set_setting(GUILD, "memo", "limits", {"per_minute": 5})
    await botdata_db.guilds.set_setting(
        GUILD, "memo", "welcome", {"channel_id": CHANNEL, "text": "hi"}
    )
    first = await botdata_db.guilds.get_setting(GUILD, "memo", "limits")
    assert first == Limits(per_minute=5)
    assert await botdata_db.guilds.get_setting(GUILD, "memo", "limits") is first
    welcome = await botdata_db.guilds.get_setting(GUILD, "memo", "welcome")
    assert await botdata_db.guilds.get_setting(GUILD, "memo", "welcome") is not welcome
    await botdata_db.guilds.set_setting(GUILD, "memo", "limits", {"per_minute": 7})
    assert await botdata_db.guilds.get_setting(GUILD, "memo", "limits") == Limits(per_minute=7)
    assert await botdata_db.guilds.get_setting(OTHER_GUILD, "memo", "limits") is None
    await botdata_db.guilds.delete_setting(GUILD, "memo", "limits")
    assert await botdata_db.guilds.get_setting(GUILD, "memo", "limits") is None


async def test_stored_value_that_no_longer_matches_the_model(botdata_db: botdata.Database) -> None:
    await botdata_db.guilds.set_setting(GUILD, "welcome_stale", "message", {"text": "old shape"})
    botdata_db.guilds.register_settings("welcome_stale", "message", Welcome)
    with pytest.raises(InvalidSettingValueError):
        await botdata_db.guilds.get_setting(GUILD, "welcome_stale", "message")
    with pytest.raises(InvalidSettingValueError):
        await botdata_db.guilds.module_settings(GUILD, "welcome_stale")


async def test_register_refuses_what_is_not_a_model(botdata_db: botdata.Database) -> None:
    with pytest.raises(TypeError):
        botdata_db.guilds.register_settings("fun", "a", dict)  # type: ignore[arg-type]
    instance = Welcome(channel_id=CHANNEL, text="x")
    with pytest.raises(TypeError):
        botdata_db.guilds.register_settings("fun", "a", instance)  # type: ignore[arg-type]
    await botdata_db.guilds.set_setting(GUILD, "fun", "a", "free")
    assert await botdata_db.guilds.get_setting(GUILD, "fun", "a") == "free"
