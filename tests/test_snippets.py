"""db.snippets: names and aliases unique per guild ignoring case, atomic use counts, permissions,
locks, search and claims."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from botdata.errors import (
    InvalidOffsetError,
    InvalidPageError,
    InvalidSnippetContentError,
    InvalidSnippetNameError,
    InvalidSnowflakeError,
    NotAnAliasError,
    SnippetAliasLimitError,
    SnippetAuthorPresentError,
    SnippetLockedError,
    SnippetNameTakenError,
    SnippetNotFoundError,
    SnippetPermissionError,
)
from botdata.managers.snippets import MAX_ALIASES
from botdata.models import Guild, Snippet, SnippetName

GUILD = 100_000_000_000_000_001
OTHER_GUILD = 100_000_000_000_000_002
AUTHOR = 200_000_000_000_000_001
OTHER = 200_000_000_000_000_002
MOD = 300_000_000_000_000_001


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of ``guilds``, ``snippets`` and ``snippet_names``."""
    return {
        "guilds": await Guild.all().order_by("id").values(),
        "snippets": await Snippet.all().order_by("id").values(),
        "names": await SnippetName.all().order_by("id").values(),
    }


async def test_create_then_get_by_name_or_alias_ignoring_case(botdata_db):
    created = await botdata_db.snippets.create(GUILD, "Hello-World_1", "hi there", author_id=AUTHOR)
    assert (created.guild_id, created.name, created.content) == (GUILD, "Hello-World_1", "hi there")
    assert (created.author_id, created.uses, created.locked) == (AUTHOR, 0, False)
    assert created.aliases == []
    assert isinstance(created.created_at, datetime)
    assert created.created_at.utcoffset() is not None
    await botdata_db.snippets.add_alias(
        GUILD, "hello-world_1", "HW", actor_id=AUTHOR, is_moderator=False
    )
    for name in ("Hello-World_1", "HELLO-WORLD_1", "hello-world_1", "hw", "Hw"):
        got = await botdata_db.snippets.get(GUILD, name)
        assert (got.id, got.name, got.aliases) == (created.id, "Hello-World_1", ["HW"])
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.get(OTHER_GUILD, "hello-world_1")
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.get(GUILD, "nothing")
    names = await SnippetName.filter(snippet_id=created.id).order_by("id").values("name", "key")
    assert names == [{"name": "Hello-World_1", "key": "hello-world_1"}, {"name": "HW", "key": "hw"}]


async def test_create_makes_the_guild_row_and_records_the_author(botdata_db):
    snippet = await botdata_db.snippets.create(GUILD, "rules", "be nice", author_id=AUTHOR)
    guild = await Guild.get(id=GUILD)
    assert guild.created_at is not None
    assert guild.joined_at is not None
    row = await Snippet.get(id=snippet.id)
    assert (row.created_by, row.updated_by, row.author_id) == (AUTHOR, AUTHOR, AUTHOR)


async def test_limits_are_inclusive(botdata_db):
    longest = "n" * 100
    snippet = await botdata_db.snippets.create(GUILD, longest, "c" * 4000, author_id=AUTHOR)
    assert (snippet.name, len(snippet.content)) == (longest, 4000)
    assert (await botdata_db.snippets.create(GUILD, "x", "y", author_id=AUTHOR)).name == "x"


@pytest.mark.parametrize(
    ("name", "content", "author", "guild", "error"),
    [
        ("", "c", AUTHOR, GUILD, InvalidSnippetNameError),
        ("n" * 101, "c", AUTHOR, GUILD, InvalidSnippetNameError),
        ("with space", "c", AUTHOR, GUILD, InvalidSnippetNameError),
        ("caf\u00e9", "c", AUTHOR, GUILD, InvalidSnippetNameError),
        ("\u0130stanbul", "c", AUTHOR, GUILD, InvalidSnippetNameError),
        ("name\n", "c", AUTHOR, GUILD, InvalidSnippetNameError),
        ("a.b", "c", AUTHOR, GUILD, InvalidSnippetNameError),
        (None, "c", AUTHOR, GUILD, InvalidSnippetNameError),
        (5, "c", AUTHOR, GUILD, InvalidSnippetNameError),
        ("name", "", AUTHOR, GUILD, InvalidSnippetContentError),
        ("name", " \n\t", AUTHOR, GUILD, InvalidSnippetContentError),
        ("name", "c" * 4001, AUTHOR, GUILD, InvalidSnippetContentError),
        ("name", None, AUTHOR, GUILD, InvalidSnippetContentError),
        ("name", "c", 0, GUILD, InvalidSnowflakeError),
        ("name", "c", "200000000000000001", GUILD, InvalidSnowflakeError),
        ("name", "c", True, GUILD, InvalidSnowflakeError),
        ("name", "c", AUTHOR, -1, InvalidSnowflakeError),
        ("name", "c", AUTHOR, None, InvalidSnowflakeError),
    ],
)
async def test_create_rejects_bad_input_and_writes_nothing(
    botdata_db, name, content, author, guild, error
):
    before = await snapshot()
    with pytest.raises(error):
        await botdata_db.snippets.create(guild, name, content, author_id=author)
    assert await snapshot() == before


async def test_duplicate_name_ignoring_case_rolls_the_snippet_back(botdata_db):
    first = await botdata_db.snippets.create(GUILD, "Faq", "one", author_id=AUTHOR)
    before = await snapshot()
    for name in ("Faq", "FAQ", "faq"):
        with pytest.raises(SnippetNameTakenError):
            await botdata_db.snippets.create(GUILD, name, "two", author_id=OTHER)
    assert await snapshot() == before
    assert await Snippet.all().count() == 1
    # Other guilds have their own names.
    elsewhere = await botdata_db.snippets.create(OTHER_GUILD, "FAQ", "three", author_id=OTHER)
    assert elsewhere.id != first.id


async def test_concurrent_creates_of_one_name_keep_one(botdata_db):
    names = ["Same", "same", "SAME", "sAmE", "same"] * 2
    outcomes = await asyncio.gather(
        *(botdata_db.snippets.create(GUILD, name, "c", author_id=AUTHOR) for name in names),
        return_exceptions=True,
    )
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(created) == 1
    assert all(isinstance(o, SnippetNameTakenError) for o in outcomes if o not in created)
    assert await Snippet.all().count() == 1
    assert await SnippetName.all().count() == 1


async def test_fifty_concurrent_uses_count_fifty(botdata_db):
    snippet = await botdata_db.snippets.create(GUILD, "hot", "content", author_id=AUTHOR)
    await botdata_db.snippets.add_alias(GUILD, "hot", "h", actor_id=AUTHOR, is_moderator=False)
    used = await asyncio.gather(
        *(botdata_db.snippets.use(GUILD, "HOT" if i % 2 else "h") for i in range(50))
    )
    assert sorted(s.uses for s in used) == list(range(1, 51))
    assert all(s.id == snippet.id and s.content == "content" for s in used)
    assert (await botdata_db.snippets.get(GUILD, "hot")).uses == 50
    assert (await Snippet.get(id=snippet.id)).uses == 50


async def test_use_of_unknown_or_bad_name(botdata_db):
    await botdata_db.snippets.create(GUILD, "known", "content", author_id=AUTHOR)
    before = await snapshot()
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.use(GUILD, "unknown")
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.use(OTHER_GUILD, "known")
    with pytest.raises(InvalidSnippetNameError):
        await botdata_db.snippets.use(GUILD, "bad name")
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.snippets.use(1, "known")
    assert await snapshot() == before


async def test_alias_collisions_ignore_case_and_write_nothing(botdata_db):
    await botdata_db.snippets.create(GUILD, "Alpha", "a", author_id=AUTHOR)
    await botdata_db.snippets.create(GUILD, "Beta", "b", author_id=AUTHOR)
    await botdata_db.snippets.add_alias(
        GUILD, "alpha", "First", actor_id=AUTHOR, is_moderator=False
    )
    before = await snapshot()
    for alias in ("BETA", "beta", "first", "FIRST", "alpha", "ALPHA"):
        with pytest.raises(SnippetNameTakenError):
            await botdata_db.snippets.add_alias(
                GUILD, "beta", alias, actor_id=AUTHOR, is_moderator=False
            )
    with pytest.raises(SnippetNameTakenError):
        await botdata_db.snippets.create(GUILD, "fIrSt", "c", author_id=AUTHOR)
    with pytest.raises(InvalidSnippetNameError):
        await botdata_db.snippets.add_alias(
            GUILD, "beta", "no way", actor_id=AUTHOR, is_moderator=False
        )
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.add_alias(
            GUILD, "gamma", "g", actor_id=AUTHOR, is_moderator=False
        )
    assert await snapshot() == before
    # The same alias in another guild is fine.
    await botdata_db.snippets.create(OTHER_GUILD, "x", "c", author_id=AUTHOR)
    moved = await botdata_db.snippets.add_alias(
        OTHER_GUILD, "x", "first", actor_id=AUTHOR, is_moderator=False
    )
    assert moved.aliases == ["first"]


async def test_concurrent_aliases_of_one_key_keep_one(botdata_db):
    await botdata_db.snippets.create(GUILD, "one", "1", author_id=AUTHOR)
    await botdata_db.snippets.create(GUILD, "two", "2", author_id=AUTHOR)
    outcomes = await asyncio.gather(
        botdata_db.snippets.add_alias(GUILD, "one", "Shared", actor_id=AUTHOR, is_moderator=False),
        botdata_db.snippets.add_alias(GUILD, "two", "SHARED", actor_id=AUTHOR, is_moderator=False),
        botdata_db.snippets.create(GUILD, "shared", "3", author_id=AUTHOR),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert sum(isinstance(o, SnippetNameTakenError) for o in outcomes) == 2
    assert await SnippetName.filter(key="shared").count() == 1


async def test_remove_alias(botdata_db):
    await botdata_db.snippets.create(GUILD, "main", "c", author_id=AUTHOR)
    await botdata_db.snippets.add_alias(GUILD, "main", "Other", actor_id=AUTHOR, is_moderator=False)
    await botdata_db.snippets.add_alias(GUILD, "main", "third", actor_id=MOD, is_moderator=True)
    before = await snapshot()
    with pytest.raises(NotAnAliasError):
        await botdata_db.snippets.remove_alias(GUILD, "MAIN", actor_id=AUTHOR, is_moderator=False)
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.remove_alias(
            GUILD, "missing", actor_id=AUTHOR, is_moderator=False
        )
    with pytest.raises(SnippetPermissionError):
        await botdata_db.snippets.remove_alias(GUILD, "other", actor_id=OTHER, is_moderator=False)
    assert await snapshot() == before
    after = await botdata_db.snippets.remove_alias(
        GUILD, "OTHER", actor_id=AUTHOR, is_moderator=False
    )
    assert (after.name, after.aliases) == ("main", ["third"])
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.get(GUILD, "other")
    # The freed name can be taken again.
    assert (
        await botdata_db.snippets.create(GUILD, "other", "new", author_id=OTHER)
    ).name == "other"


async def test_a_snippet_has_at_most_max_aliases(botdata_db):
    await botdata_db.snippets.create(GUILD, "main", "c", author_id=AUTHOR)
    for n in range(MAX_ALIASES):
        await botdata_db.snippets.add_alias(
            GUILD, "main", f"a{n}", actor_id=AUTHOR, is_moderator=False
        )
    before = await snapshot()
    for actor, moderator in ((AUTHOR, False), (MOD, True)):  # moderators too
        with pytest.raises(SnippetAliasLimitError, match=f"at most {MAX_ALIASES} aliases"):
            await botdata_db.snippets.add_alias(
                GUILD, "a3", "one-more", actor_id=actor, is_moderator=moderator
            )
    assert await snapshot() == before
    await botdata_db.snippets.remove_alias(GUILD, "a0", actor_id=AUTHOR, is_moderator=False)
    after = await botdata_db.snippets.add_alias(
        GUILD, "main", "one-more", actor_id=AUTHOR, is_moderator=False
    )
    assert len(after.aliases) == MAX_ALIASES
    assert "one-more" in after.aliases


async def test_concurrent_aliases_never_exceed_the_cap(botdata_db):
    snippet = await botdata_db.snippets.create(GUILD, "main", "c", author_id=AUTHOR)
    for n in range(MAX_ALIASES - 3):
        await botdata_db.snippets.add_alias(
            GUILD, "main", f"a{n}", actor_id=AUTHOR, is_moderator=False
        )
    outcomes = await asyncio.gather(
        *(
            botdata_db.snippets.add_alias(
                GUILD, "main", f"b{n}", actor_id=AUTHOR, is_moderator=False
            )
            for n in range(20)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 3
    assert all(
        isinstance(o, SnippetAliasLimitError) for o in outcomes if isinstance(o, BaseException)
    )
    assert await SnippetName.filter(snippet_id=snippet.id, is_alias=True).count() == MAX_ALIASES


async def test_delete_by_alias_removes_every_name(botdata_db):
    snippet = await botdata_db.snippets.create(GUILD, "gone", "c", author_id=AUTHOR)
    await botdata_db.snippets.add_alias(GUILD, "gone", "g1", actor_id=AUTHOR, is_moderator=False)
    kept = await botdata_db.snippets.create(GUILD, "kept", "c", author_id=AUTHOR)
    deleted = await botdata_db.snippets.delete(GUILD, "G1", actor_id=AUTHOR, is_moderator=False)
    assert (deleted.id, deleted.name, deleted.aliases) == (snippet.id, "gone", ["g1"])
    assert not await Snippet.filter(id=snippet.id).exists()
    assert await SnippetName.filter(snippet_id=snippet.id).count() == 0
    assert [row.snippet_id for row in await SnippetName.all()] == [kept.id]
    for name in ("gone", "g1"):
        with pytest.raises(SnippetNotFoundError):
            await botdata_db.snippets.get(GUILD, name)
    await botdata_db.snippets.create(GUILD, "g1", "reused", author_id=OTHER)


async def test_edit_and_delete_by_author_or_moderator_only(botdata_db):
    await botdata_db.snippets.create(GUILD, "doc", "v1", author_id=AUTHOR)
    before = await snapshot()
    with pytest.raises(SnippetPermissionError):
        await botdata_db.snippets.edit(GUILD, "doc", "v2", actor_id=OTHER, is_moderator=False)
    with pytest.raises(SnippetPermissionError):
        await botdata_db.snippets.delete(GUILD, "doc", actor_id=OTHER, is_moderator=False)
    with pytest.raises(SnippetPermissionError):
        await botdata_db.snippets.add_alias(GUILD, "doc", "d", actor_id=OTHER, is_moderator=False)
    with pytest.raises(InvalidSnippetContentError):
        await botdata_db.snippets.edit(GUILD, "doc", "", actor_id=AUTHOR, is_moderator=False)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.snippets.edit(GUILD, "doc", "v2", actor_id=-5, is_moderator=False)
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.edit(GUILD, "nope", "v2", actor_id=AUTHOR, is_moderator=False)
    assert await snapshot() == before

    edited = await botdata_db.snippets.edit(GUILD, "DOC", "v2", actor_id=AUTHOR, is_moderator=False)
    assert edited.content == "v2"
    edited = await botdata_db.snippets.edit(GUILD, "doc", "v3", actor_id=MOD, is_moderator=True)
    assert (edited.content, edited.author_id) == ("v3", AUTHOR)
    row = await Snippet.get(id=edited.id)
    assert row.updated_by == MOD
    assert row.updated_at >= row.created_at
    await botdata_db.snippets.delete(GUILD, "doc", actor_id=MOD, is_moderator=True)
    assert await Snippet.all().count() == 0


async def test_locked_snippets_change_only_by_moderators(botdata_db):
    await botdata_db.snippets.create(GUILD, "policy", "v1", author_id=AUTHOR)
    await botdata_db.snippets.add_alias(GUILD, "policy", "pol", actor_id=AUTHOR, is_moderator=False)
    before = await snapshot()
    with pytest.raises(SnippetPermissionError):
        await botdata_db.snippets.set_locked(
            GUILD, "policy", True, actor_id=AUTHOR, is_moderator=False
        )
    assert await snapshot() == before
    locked = await botdata_db.snippets.set_locked(
        GUILD, "pol", True, actor_id=MOD, is_moderator=True
    )
    assert locked.locked
    before = await snapshot()
    by_author = {"actor_id": AUTHOR, "is_moderator": False}
    with pytest.raises(SnippetLockedError):
        await botdata_db.snippets.edit(GUILD, "policy", "v2", **by_author)
    with pytest.raises(SnippetLockedError):
        await botdata_db.snippets.delete(GUILD, "policy", **by_author)
    with pytest.raises(SnippetLockedError):
        await botdata_db.snippets.add_alias(GUILD, "policy", "p2", **by_author)
    with pytest.raises(SnippetLockedError):
        await botdata_db.snippets.remove_alias(GUILD, "pol", **by_author)
    with pytest.raises(SnippetPermissionError):
        await botdata_db.snippets.set_locked(GUILD, "policy", False, **by_author)
    assert await snapshot() == before
    # Uses still count on a locked snippet; moderators still edit it.
    assert (await botdata_db.snippets.use(GUILD, "policy")).uses == 1
    assert (
        await botdata_db.snippets.edit(GUILD, "policy", "v2", actor_id=MOD, is_moderator=True)
    ).locked
    unlocked = await botdata_db.snippets.set_locked(
        GUILD, "policy", False, actor_id=MOD, is_moderator=True
    )
    assert not unlocked.locked
    edited = await botdata_db.snippets.edit(GUILD, "policy", "v3", **by_author)
    assert edited.content == "v3"
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.set_locked(GUILD, "none", True, actor_id=MOD, is_moderator=True)


async def test_list_most_used_first_then_name_with_pages(botdata_db):
    for name, uses in (("beta", 2), ("Alpha", 2), ("gamma", 5), ("delta", 0), ("Epsilon", 0)):
        await botdata_db.snippets.create(GUILD, name, "c", author_id=AUTHOR)
        for _ in range(uses):
            await botdata_db.snippets.use(GUILD, name)
    await botdata_db.snippets.create(OTHER_GUILD, "zeta", "c", author_id=AUTHOR)
    everything = await botdata_db.snippets.list(GUILD)
    assert [s.name for s in everything] == ["gamma", "Alpha", "beta", "delta", "Epsilon"]
    assert [s.uses for s in everything] == [5, 2, 2, 0, 0]
    assert [s.name for s in await botdata_db.snippets.list(GUILD, limit=2)] == ["gamma", "Alpha"]
    assert [s.name for s in await botdata_db.snippets.list(GUILD, limit=2, offset=2)] == [
        "beta",
        "delta",
    ]
    assert [s.name for s in await botdata_db.snippets.list(GUILD, limit=2, offset=4)] == ["Epsilon"]
    assert await botdata_db.snippets.list(GUILD, offset=5) == []


async def test_search_by_name_or_alias_substring_ignoring_case(botdata_db):
    await botdata_db.snippets.create(GUILD, "install-guide", "c", author_id=AUTHOR)
    await botdata_db.snippets.create(GUILD, "a_b", "c", author_id=AUTHOR)
    await botdata_db.snippets.create(GUILD, "axb", "c", author_id=AUTHOR)
    await botdata_db.snippets.create(GUILD, "other", "c", author_id=AUTHOR)
    await botdata_db.snippets.add_alias(
        GUILD, "other", "SETUP-Guide", actor_id=AUTHOR, is_moderator=False
    )
    await botdata_db.snippets.use(GUILD, "other")
    found = await botdata_db.snippets.list(GUILD, query="GUIDE")
    assert [s.name for s in found] == ["other", "install-guide"]
    assert found[0].aliases == ["SETUP-Guide"]
    # "_" is a literal, not a LIKE wildcard.
    assert [s.name for s in await botdata_db.snippets.list(GUILD, query="a_b")] == ["a_b"]
    assert await botdata_db.snippets.list(GUILD, query="zzz") == []
    assert len(await botdata_db.snippets.list(GUILD, query="")) == 4


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"limit": 0}, InvalidPageError),
        ({"limit": 101}, InvalidPageError),
        ({"limit": "5"}, InvalidPageError),
        ({"offset": -1}, InvalidOffsetError),
        ({"offset": 1.5}, InvalidOffsetError),
        ({"query": "two words"}, InvalidSnippetNameError),
        ({"query": "q" * 101}, InvalidSnippetNameError),
        ({"query": 3}, InvalidSnippetNameError),
    ],
)
async def test_list_rejects_bad_pages_and_queries(botdata_db, kwargs, error):
    with pytest.raises(error):
        await botdata_db.snippets.list(GUILD, **kwargs)


async def test_claim_only_when_the_author_left(botdata_db):
    await botdata_db.snippets.create(GUILD, "orphan", "c", author_id=AUTHOR)
    before = await snapshot()
    with pytest.raises(SnippetAuthorPresentError):
        await botdata_db.snippets.claim(GUILD, "orphan", new_author_id=OTHER, author_present=True)
    with pytest.raises(SnippetNotFoundError):
        await botdata_db.snippets.claim(GUILD, "missing", new_author_id=OTHER, author_present=False)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.snippets.claim(GUILD, "orphan", new_author_id=7, author_present=False)
    assert await snapshot() == before
    claimed = await botdata_db.snippets.claim(
        GUILD, "ORPHAN", new_author_id=OTHER, author_present=False
    )
    assert claimed.author_id == OTHER
    row = await Snippet.get(id=claimed.id)
    assert (row.author_id, row.updated_by, row.created_by) == (OTHER, OTHER, AUTHOR)
    # The new author may now edit it; the old one may not.
    await botdata_db.snippets.edit(GUILD, "orphan", "mine", actor_id=OTHER, is_moderator=False)
    with pytest.raises(SnippetPermissionError):
        await botdata_db.snippets.edit(GUILD, "orphan", "back", actor_id=AUTHOR, is_moderator=False)


async def test_locked_snippets_cannot_be_claimed(botdata_db):
    await botdata_db.snippets.create(GUILD, "fixed", "c", author_id=AUTHOR)
    await botdata_db.snippets.set_locked(GUILD, "fixed", True, actor_id=MOD, is_moderator=True)
    before = await snapshot()
    with pytest.raises(SnippetLockedError):
        await botdata_db.snippets.claim(GUILD, "fixed", new_author_id=OTHER, author_present=False)
    assert await snapshot() == before
