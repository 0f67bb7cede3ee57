"""db.notes: numbered, editable, soft-deleted notes about members."""

from __future__ import annotations

import asyncio

import pytest

from botdata.errors import (
    InvalidNoteContentError,
    InvalidNumberError,
    InvalidPageError,
    InvalidSnowflakeError,
    NoteNotFoundError,
)
from botdata.models import CaseType, Guild, Note
from tests.moderation_support import (
    GUILD,
    MOD,
    OTHER_GUILD,
    OTHER_MOD,
    OTHER_USER,
    USER,
    snapshot,
)


async def test_add_numbers_per_guild_apart_from_cases(botdata_db):
    first = await botdata_db.notes.add(GUILD, USER, MOD, "watch this one")
    await botdata_db.cases.create(GUILD, USER, MOD, CaseType.WARN, "a case")
    second = await botdata_db.notes.add(GUILD, OTHER_USER, MOD, "second")
    other = await botdata_db.notes.add(OTHER_GUILD, USER, MOD, "elsewhere")
    assert (first.number, second.number, other.number) == (1, 2, 1)
    guild = await Guild.get(id=GUILD)
    assert (guild.note_count, guild.case_count) == (2, 1)
    assert (first.guild_id, first.user_id, first.moderator_id) == (GUILD, USER, MOD)
    assert first.content == "watch this one"
    row = await Note.get(id=first.id)
    assert (row.created_by, row.updated_by, row.is_deleted) == (MOD, MOD, False)
    assert await botdata_db.notes.get(GUILD, 1) == first


async def test_fifty_concurrent_adds_on_a_new_guild_number_1_to_50(botdata_db):
    notes = await asyncio.gather(
        *(botdata_db.notes.add(GUILD, USER, MOD, f"n{i}") for i in range(50))
    )
    assert sorted(note.number for note in notes) == list(range(1, 51))
    assert (await Guild.get(id=GUILD)).note_count == 50


async def test_for_user_newest_first_without_deleted(botdata_db):
    for i in range(4):
        await botdata_db.notes.add(GUILD, USER, MOD, f"u{i}")
        await botdata_db.notes.add(GUILD, OTHER_USER, MOD, f"o{i}")
    await botdata_db.notes.delete(GUILD, 5, by=MOD)
    assert [n.number for n in await botdata_db.notes.for_user(GUILD, USER)] == [7, 3, 1]
    assert [n.number for n in await botdata_db.notes.for_user(GUILD, USER, limit=2)] == [7, 3]
    assert [n.content for n in await botdata_db.notes.for_user(GUILD, USER, before=3)] == ["u0"]
    assert await botdata_db.notes.for_user(OTHER_GUILD, USER) == []
    with pytest.raises(InvalidPageError):
        await botdata_db.notes.for_user(GUILD, USER, limit=0)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.notes.for_user(GUILD, 99)


async def test_edit_sets_content_and_updated_by(botdata_db):
    note = await botdata_db.notes.add(GUILD, USER, MOD, "first draft")
    edited = await botdata_db.notes.edit(GUILD, 1, content="final", editor_id=OTHER_MOD)
    assert (edited.id, edited.content) == (note.id, "final")
    assert edited.updated_at > note.updated_at
    row = await Note.get(id=note.id)
    assert (row.updated_by, row.created_by) == (OTHER_MOD, MOD)
    assert (await botdata_db.notes.get(GUILD, 1)).content == "final"


async def test_delete_is_soft_and_numbers_are_not_reused(botdata_db):
    await botdata_db.notes.add(GUILD, USER, MOD, "one")
    await botdata_db.notes.add(GUILD, USER, MOD, "two")
    assert await botdata_db.notes.delete(GUILD, 2, by=OTHER_MOD) is None
    with pytest.raises(NoteNotFoundError):
        await botdata_db.notes.get(GUILD, 2)
    assert not await Note.exists(guild_id=GUILD, number=2)
    row = await Note.all_objects.get(guild_id=GUILD, number=2)
    assert (row.is_deleted, row.deleted_by, row.content) == (True, OTHER_MOD, "two")
    assert row.deleted_at is not None
    assert (await botdata_db.notes.add(GUILD, USER, MOD, "three")).number == 3

    before = await snapshot()
    with pytest.raises(NoteNotFoundError):
        await botdata_db.notes.delete(GUILD, 2, by=MOD)
    with pytest.raises(NoteNotFoundError):
        await botdata_db.notes.edit(GUILD, 2, content="revive", editor_id=MOD)
    with pytest.raises(NoteNotFoundError):
        await botdata_db.notes.delete(GUILD, 9, by=MOD)
    assert await snapshot() == before


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"guild_id": 1}, InvalidSnowflakeError),
        ({"user_id": None}, InvalidSnowflakeError),
        ({"moderator_id": 2**64}, InvalidSnowflakeError),
        ({"content": ""}, InvalidNoteContentError),
        ({"content": "  \n "}, InvalidNoteContentError),
        ({"content": "x" * 2001}, InvalidNoteContentError),
        ({"content": None}, InvalidNoteContentError),
    ],
)
async def test_bad_add_raises_and_writes_nothing(botdata_db, change, error):
    args = {"guild_id": GUILD, "user_id": USER, "moderator_id": MOD, "content": "c"} | change
    with pytest.raises(error):
        await botdata_db.notes.add(**args)
    assert await snapshot() == {key: [] for key in await snapshot()}


async def test_bad_edit_and_delete_raise_and_write_nothing(botdata_db):
    await botdata_db.notes.add(GUILD, USER, MOD, "keep me")
    before = await snapshot()
    with pytest.raises(InvalidNoteContentError):
        await botdata_db.notes.edit(GUILD, 1, content="x" * 2001, editor_id=MOD)
    with pytest.raises(InvalidNoteContentError):
        await botdata_db.notes.edit(GUILD, 1, content="", editor_id=MOD)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.notes.edit(GUILD, 1, content="new", editor_id=5)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.notes.delete(GUILD, 1, by=5)
    with pytest.raises(InvalidNumberError):
        await botdata_db.notes.delete(GUILD, 0, by=MOD)
    with pytest.raises(InvalidNumberError):
        await botdata_db.notes.get(GUILD, "1")
    assert await snapshot() == before
