"""db.case_types: a guild's own case types."""

from __future__ import annotations

import asyncio

import pytest
from tortoise.exceptions import IntegrityError

from botdata.errors import (
    BuiltinCaseTypeNameError,
    CaseTypeExistsError,
    CaseTypeInUseError,
    CaseTypeNotFoundError,
    InvalidCaseTypeNameError,
    InvalidCaseTypeTextError,
    InvalidSeverityError,
    InvalidSnowflakeError,
)
from botdata.models import CustomCaseType, Guild
from tests.moderation_support import GUILD, MOD, OTHER_GUILD, USER, snapshot


async def test_create_get_list_delete(botdata_db):
    assert not await Guild.exists(id=GUILD)
    mute = await botdata_db.case_types.create(
        GUILD,
        "  Mute ",
        display_name=" Muted ",
        description="Cannot talk",
        severity=4,
        requires_duration=True,
        created_by=MOD,
    )
    assert (mute.guild_id, mute.name, mute.display_name) == (GUILD, "mute", "Muted")
    assert (mute.description, mute.severity, mute.requires_duration) == ("Cannot talk", 4, True)
    assert (await Guild.get(id=GUILD)).case_count == 0  # the guild row was made
    assert (await CustomCaseType.get(id=mute.id)).created_by == MOD
    plain = await botdata_db.case_types.create(GUILD, "a-plain_1", display_name="Plain")
    assert (plain.severity, plain.requires_duration, plain.description) == (1, False, None)
    await botdata_db.case_types.create(OTHER_GUILD, "mute", display_name="Other guild's mute")

    assert await botdata_db.case_types.get(GUILD, "MUTE") == mute
    assert [t.name for t in await botdata_db.case_types.list(GUILD)] == ["a-plain_1", "mute"]
    assert [t.guild_id for t in await botdata_db.case_types.list(OTHER_GUILD)] == [OTHER_GUILD]

    await botdata_db.case_types.delete(GUILD, "Mute")
    with pytest.raises(CaseTypeNotFoundError):
        await botdata_db.case_types.get(GUILD, "mute")
    assert [t.name for t in await botdata_db.case_types.list(GUILD)] == ["a-plain_1"]
    assert await botdata_db.case_types.get(OTHER_GUILD, "mute")


async def test_duplicate_name_raises_and_writes_nothing(botdata_db):
    await botdata_db.case_types.create(GUILD, "mute", display_name="Mute")
    before = await snapshot()
    with pytest.raises(CaseTypeExistsError):
        await botdata_db.case_types.create(GUILD, "MUTE", display_name="Again")
    assert await snapshot() == before


async def test_concurrent_creates_of_one_name_make_one_type(botdata_db):
    results = await asyncio.gather(
        *(botdata_db.case_types.create(GUILD, "mute", display_name=f"M{i}") for i in range(10)),
        return_exceptions=True,
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == 1
    assert all(isinstance(r, CaseTypeExistsError) for r in results if r not in made)
    assert await CustomCaseType.filter(guild_id=GUILD).count() == 1


BAD_CREATES = [
    ({"guild_id": 3}, InvalidSnowflakeError),
    ({"created_by": -1}, InvalidSnowflakeError),
    ({"name": ""}, InvalidCaseTypeNameError),
    ({"name": "two words"}, InvalidCaseTypeNameError),
    ({"name": "x" * 51}, InvalidCaseTypeNameError),
    ({"name": "ünïcode"}, InvalidCaseTypeNameError),
    ({"name": 5}, InvalidCaseTypeNameError),
    ({"name": "ban"}, BuiltinCaseTypeNameError),
    ({"name": "TempBan"}, BuiltinCaseTypeNameError),
    ({"display_name": ""}, InvalidCaseTypeTextError),
    ({"display_name": "   "}, InvalidCaseTypeTextError),
    ({"display_name": "x" * 101}, InvalidCaseTypeTextError),
    ({"display_name": None}, InvalidCaseTypeTextError),
    ({"description": "x" * 501}, InvalidCaseTypeTextError),
    ({"severity": 0}, InvalidSeverityError),
    ({"severity": 11}, InvalidSeverityError),
    ({"severity": "5"}, InvalidSeverityError),
    ({"severity": True}, InvalidSeverityError),
]


@pytest.mark.parametrize(("change", "error"), BAD_CREATES)
async def test_bad_create_raises_and_writes_nothing(botdata_db, change, error):
    args = {"guild_id": GUILD, "name": "mute", "display_name": "Mute"} | change
    with pytest.raises(error):
        await botdata_db.case_types.create(**args)
    assert await snapshot() == {key: [] for key in await snapshot()}


async def test_the_database_checks_severity_too(botdata_db):
    await Guild.create(id=GUILD)
    with pytest.raises(IntegrityError):
        await CustomCaseType.create(guild_id=GUILD, name="x", display_name="X", severity=11)


async def test_delete_of_a_used_type_raises_and_keeps_it(botdata_db):
    await botdata_db.case_types.create(GUILD, "mute", display_name="Mute")
    await botdata_db.case_types.create(GUILD, "gag", display_name="Gag")
    await botdata_db.cases.create(GUILD, USER, MOD, "mute", "loud")
    gag = await botdata_db.cases.create(GUILD, USER, MOD, "gag", "loud")
    await botdata_db.cases.void(GUILD, gag.number, by=MOD, reason="voided cases still use it")
    before = await snapshot()
    with pytest.raises(CaseTypeInUseError):
        await botdata_db.case_types.delete(GUILD, "mute")
    with pytest.raises(CaseTypeInUseError):
        await botdata_db.case_types.delete(GUILD, "gag")
    assert await snapshot() == before


async def test_missing_and_bad_names(botdata_db):
    await botdata_db.case_types.create(OTHER_GUILD, "mute", display_name="Mute")
    with pytest.raises(CaseTypeNotFoundError):
        await botdata_db.case_types.get(GUILD, "mute")
    with pytest.raises(CaseTypeNotFoundError):
        await botdata_db.case_types.delete(GUILD, "mute")
    with pytest.raises(BuiltinCaseTypeNameError):
        await botdata_db.case_types.get(GUILD, "warn")
    with pytest.raises(InvalidCaseTypeNameError):
        await botdata_db.case_types.delete(GUILD, "no spaces")
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.case_types.list(42)
    assert await botdata_db.case_types.list(GUILD) == []
