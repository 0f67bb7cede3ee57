"""The snippets cog through dpytest, as members would type it (both backends).

``sent`` records the JSON payload of every message the bot sends (content and
``allowed_mentions``, exactly as Discord would get them), by wrapping discord.py's own
``handle_message_parameters``: dpytest's messages do not keep the allowed mentions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord
import discord.abc
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend

import botdata
from botdata.managers.snippets import MAX_ALIASES
from botdata.models import AccessType, CaseType, PermissionType, SnippetName
from botdata.schemas import SnippetSchema
from botdata_cogs import limits
from tests.cogs.conftest import Scene, say
from tests.cogs.slash import slash

#: ``allowed_mentions`` of a message that pings nobody.
PINGS_NOBODY = {"parse": []}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The payload of every message the bot sends from now on."""
    payloads: list[dict[str, Any]] = []
    original: Callable[..., Any] = discord.abc.handle_message_parameters

    def recording(*args: Any, **kwargs: Any) -> Any:
        params = original(*args, **kwargs)
        payloads.append(params.payload or {})
        return params

    monkeypatch.setattr(discord.abc, "handle_message_parameters", recording)
    return payloads


def p(db: botdata.Database) -> str:
    return db.settings.DEFAULT_PREFIX


async def make(
    db: botdata.Database,
    scene: Scene,
    name: str,
    content: str,
    author: discord.Member | None = None,
) -> SnippetSchema:
    return await db.snippets.create(
        scene.guild.id, name, content, author_id=(author or scene.member).id
    )


async def names(db: botdata.Database, scene: Scene) -> list[str]:
    return [s.name for s in await db.snippets.list(scene.guild.id, limit=100)]


# create / get ---------------------------------------------------------------------------------


async def test_create_then_get_posts_the_content_and_counts_uses(
    scene: Scene, db: botdata.Database
) -> None:
    [reply] = await say(f"{p(db)}snippet create faq Read the **FAQ** first.", scene.member)
    assert reply.content == "Snippet `faq` saved."
    created = await db.snippets.get(scene.guild.id, "faq")
    assert (created.content, created.author_id, created.uses) == (
        "Read the **FAQ** first.",
        scene.member.id,
        0,
    )
    [reply] = await say(f"{p(db)}snippet faq", scene.other)
    assert reply.content == "Read the **FAQ** first."
    [reply] = await say(f"{p(db)}snippet FAQ", scene.other)
    assert reply.content == "Read the **FAQ** first."
    assert (await db.snippets.get(scene.guild.id, "faq")).uses == 2
    [reply] = await say(f"{p(db)}snippet nothing", scene.other)
    assert reply.content == "There is no snippet called `nothing`."


async def test_a_long_snippet_is_posted_as_an_embed(scene: Scene, db: botdata.Database) -> None:
    text = "word " * 700
    await say(f"{p(db)}snippet create long {text}", scene.member)
    assert len((await db.snippets.get(scene.guild.id, "long")).content) > 2000
    [reply] = await say(f"{p(db)}snippet long", scene.member)
    assert reply.content in (None, "")
    assert reply.embeds[0].description == text.strip()


async def test_emoji_count_twice_in_discord_limits(scene: Scene, db: botdata.Database) -> None:
    # 1500 emoji are 3000 UTF-16 units: too long for a message's content.
    await make(db, scene, "smiles", "\U0001f600" * 1500)
    [reply] = await say(f"{p(db)}snippet smiles", scene.member)
    assert reply.content in (None, "")
    assert reply.embeds[0].description == "\U0001f600" * 1500
    # 4000 emoji do not fit an embed's description either: cut there.
    await make(db, scene, "more", "\U0001f600" * 4000)
    [reply] = await say(f"{p(db)}snippet more", scene.member)
    description = reply.embeds[0].description or ""
    assert limits.length(description) <= limits.EMBED_DESCRIPTION
    assert description.endswith(limits.ELLIPSIS)


async def test_snippet_content_pings_nobody(
    scene: Scene, db: botdata.Database, sent: list[dict[str, Any]]
) -> None:
    await make(db, scene, "ping", f"@everyone @here <@&{scene.mod_role.id}> <@{scene.mod.id}>")
    sent.clear()
    [reply] = await say(f"{p(db)}snippet ping", scene.member)
    assert reply.content.startswith("@everyone")
    [payload] = sent
    assert payload["content"] == reply.content
    assert payload["allowed_mentions"] == PINGS_NOBODY
    sent.clear()
    [reply] = await say(f"{p(db)}ping", scene.member)
    assert [s["allowed_mentions"] for s in sent] == [PINGS_NOBODY]


# The short form <prefix><name> ----------------------------------------------------------------


async def test_short_form_posts_the_snippet_and_counts_a_use(
    scene: Scene, db: botdata.Database
) -> None:
    await make(db, scene, "rules", "Be nice.")
    await db.snippets.add_alias(
        scene.guild.id, "rules", "r", actor_id=scene.member.id, is_moderator=False
    )
    [reply] = await say(f"{p(db)}rules", scene.other)
    assert reply.content == "Be nice."
    [reply] = await say(f"{p(db)}R please", scene.other)
    assert reply.content == "Be nice."
    assert (await db.snippets.get(scene.guild.id, "rules")).uses == 2
    # Not a snippet, not a valid name, no prefix, a bot: silence and no use counted.
    assert await say(f"{p(db)}unknown", scene.other) == []
    assert await say(f"{p(db)}bad!name", scene.other) == []
    assert await say("rules", scene.other) == []
    assert (await db.snippets.get(scene.guild.id, "rules")).uses == 2


async def test_commands_win_over_snippets_of_the_same_name(
    scene: Scene, db: botdata.Database
) -> None:
    await make(db, scene, "snippets", "shadowed")
    [reply] = await say(f"{p(db)}snippets", scene.other)
    assert reply.embeds[0].title == "Snippets"  # the list command, not the snippet
    [reply] = await say(f"{p(db)}snippet snippets", scene.other)
    assert reply.content == "shadowed"


async def test_short_form_obeys_the_access_rules(scene: Scene, db: botdata.Database) -> None:
    await make(db, scene, "rules", "Be nice.")
    await db.permissions.add_rule(
        scene.guild.id,
        access=AccessType.IGNORE,
        target_type=PermissionType.MEMBER,
        target_id=scene.other.id,
        module="snippets",
    )
    assert await say(f"{p(db)}rules", scene.other) == []
    await db.permissions.add_rule(
        scene.guild.id,
        access=AccessType.BLACKLIST,
        target_type=PermissionType.MEMBER,
        target_id=scene.member.id,
        command="snippet",
    )
    [reply] = await say(f"{p(db)}rules", scene.member)
    assert reply.content == "That command is not allowed for you here."
    assert (await db.snippets.get(scene.guild.id, "rules")).uses == 0


# edit / delete --------------------------------------------------------------------------------


async def test_only_the_author_or_a_moderator_edits(scene: Scene, db: botdata.Database) -> None:
    await make(db, scene, "faq", "v1")
    [reply] = await say(f"{p(db)}snippet edit faq hijacked", scene.other)
    assert reply.content == "only the author or a moderator may change 'faq'"
    assert (await db.snippets.get(scene.guild.id, "faq")).content == "v1"
    [reply] = await say(f"{p(db)}snippet edit FAQ v2", scene.member)
    assert reply.content == "Snippet `faq` updated."
    assert (await db.snippets.get(scene.guild.id, "faq")).content == "v2"
    [reply] = await say(f"{p(db)}snippet edit faq v3 by a mod", scene.mod)
    assert reply.content == "Snippet `faq` updated."
    assert (await db.snippets.get(scene.guild.id, "faq")).content == "v3 by a mod"


async def test_manage_messages_makes_a_moderator(scene: Scene, db: botdata.Database) -> None:
    await make(db, scene, "faq", "v1")
    helpers = backend.make_role(
        "Helpers", scene.guild, permissions=discord.Permissions(manage_messages=True).value
    )
    helpers.position = 3
    await dpytest.add_role(scene.other, helpers)
    [reply] = await say(f"{p(db)}snippet edit faq by a helper", scene.other)
    assert reply.content == "Snippet `faq` updated."
    [reply] = await say(f"{p(db)}snippet lock faq", scene.other)
    assert reply.content == "Snippet `faq` is locked."


async def test_only_the_author_or_a_moderator_deletes(scene: Scene, db: botdata.Database) -> None:
    await make(db, scene, "one", "1")
    await make(db, scene, "two", "2")
    [reply] = await say(f"{p(db)}snippet delete one", scene.other)
    assert "only the author or a moderator" in reply.content
    assert await names(db, scene) == ["one", "two"]
    [reply] = await say(f"{p(db)}snippet delete one", scene.member)
    assert reply.content == "Snippet `one` deleted."
    [reply] = await say(f"{p(db)}snippet delete two", scene.mod)
    assert reply.content == "Snippet `two` deleted."
    assert await names(db, scene) == []
    [reply] = await say(f"{p(db)}snippet delete two", scene.mod)
    assert reply.content == "no snippet called 'two'"


# alias ----------------------------------------------------------------------------------------


async def test_alias_and_unalias(scene: Scene, db: botdata.Database) -> None:
    await make(db, scene, "faq", "answers")
    await make(db, scene, "other", "x", author=scene.other)
    [reply] = await say(f"{p(db)}snippet alias faq questions", scene.member)
    assert reply.content == "`questions` now also calls up snippet `faq`."
    [reply] = await say(f"{p(db)}snippet questions", scene.other)
    assert reply.content == "answers"
    for taken in ("QUESTIONS", "Other", "FAQ"):
        [reply] = await say(f"{p(db)}snippet alias faq {taken}", scene.member)
        assert reply.content == f"the name '{taken}' is taken in this guild (ignoring case)"
    [reply] = await say(f"{p(db)}snippet alias faq bad.alias", scene.member)
    assert "must be 1-100 characters" in reply.content
    [reply] = await say(f"{p(db)}snippet alias faq mine", scene.other)
    assert "only the author or a moderator" in reply.content
    assert (await db.snippets.get(scene.guild.id, "faq")).aliases == ["questions"]
    [reply] = await say(f"{p(db)}snippet unalias questions", scene.other)
    assert "only the author or a moderator" in reply.content
    [reply] = await say(f"{p(db)}snippet unalias questions", scene.member)
    assert reply.content == "`questions` no longer calls up snippet `faq`."
    assert (await db.snippets.get(scene.guild.id, "faq")).aliases == []


async def test_aliases_are_capped(scene: Scene, db: botdata.Database) -> None:
    await make(db, scene, "faq", "answers")
    for n in range(MAX_ALIASES):
        await db.snippets.add_alias(
            scene.guild.id, "faq", f"a{n}", actor_id=scene.member.id, is_moderator=False
        )
    [reply] = await say(f"{p(db)}snippet alias faq one-more", scene.member)
    assert reply.content == f"a snippet has at most {MAX_ALIASES} aliases; remove one first"
    assert len((await db.snippets.get(scene.guild.id, "faq")).aliases) == MAX_ALIASES


async def add_raw_aliases(db: botdata.Database, scene: Scene, name: str, count: int) -> None:
    """Give the snippet ``name`` ``count`` aliases of 100 characters, past the cap (as a
    snippet made before there was one)."""
    snippet = await db.snippets.get(scene.guild.id, name)
    for n in range(count):
        alias = f"{name}-{n:03}-".ljust(100, "x")
        await SnippetName.create(
            guild_id=scene.guild.id,
            snippet_id=snippet.id,
            name=alias,
            key=alias.lower(),
            is_alias=True,
        )


async def test_info_and_list_fit_a_message_with_many_long_aliases(
    scene: Scene, db: botdata.Database
) -> None:
    # 40 aliases of 100 characters made "snippet info" and "snippets" too big to send.
    for n in range(10):
        await make(db, scene, f"s{n}", "text")
        await add_raw_aliases(db, scene, f"s{n}", 40)
    [reply] = await say(f"{p(db)}snippet info s3", scene.member)
    [embed] = reply.embeds
    aliases = {field.name: field.value for field in embed.fields}["Aliases"] or ""
    assert limits.length(aliases) <= limits.FIELD_VALUE
    shown = aliases.count("`") // 2
    assert 1 <= shown < 40
    assert aliases.endswith(f" and {40 - shown} more")
    assert limits.embed_length(embed) <= limits.EMBED_TOTAL

    [reply] = await say(f"{p(db)}snippets", scene.member)
    [embed] = reply.embeds
    lines = (embed.description or "").splitlines()
    assert len(lines) == 10  # every snippet of the page, none cut off
    for line in lines:
        assert line.startswith("`s")
        assert line.endswith(" more"), line
    assert limits.length(embed.description or "") <= limits.EMBED_DESCRIPTION
    assert limits.embed_length(embed) <= limits.EMBED_TOTAL
    [reply] = await say(f"{p(db)}snippets s3-039", scene.member)
    assert (reply.embeds[0].description or "").startswith("`s3` · 0 uses · aka `s3-000-")


# lock / unlock --------------------------------------------------------------------------------


async def test_a_locked_snippet_is_changed_by_moderators_only(
    scene: Scene, db: botdata.Database
) -> None:
    await make(db, scene, "faq", "v1")
    [reply] = await say(f"{p(db)}snippet lock faq", scene.member)
    assert reply.content == "You need permission level 2 or the manage messages permission."
    assert not (await db.snippets.get(scene.guild.id, "faq")).locked
    [reply] = await say(f"{p(db)}snippet lock faq", scene.mod)
    assert reply.content == "Snippet `faq` is locked."
    for command in ("snippet edit faq v2", "snippet delete faq", "snippet alias faq f"):
        [reply] = await say(f"{p(db)}{command}", scene.member)
        assert reply.content == "snippet 'faq' is locked"
    after = await db.snippets.get(scene.guild.id, "faq")
    assert (after.content, after.aliases, after.locked) == ("v1", [], True)
    [reply] = await say(f"{p(db)}snippet edit faq v2", scene.mod)
    assert reply.content == "Snippet `faq` updated."
    [reply] = await say(f"{p(db)}snippet unlock faq", scene.member)
    assert "permission level 2" in reply.content
    [reply] = await say(f"{p(db)}snippet unlock faq", scene.mod)
    assert reply.content == "Snippet `faq` is unlocked."
    [reply] = await say(f"{p(db)}snippet edit faq v3", scene.member)
    assert reply.content == "Snippet `faq` updated."
    assert (await db.snippets.get(scene.guild.id, "faq")).content == "v3"


# snippets [query] [page] / info -------------------------------------------------------------


async def test_list_most_used_first_with_search_and_pages(
    scene: Scene, db: botdata.Database
) -> None:
    for n in range(12):
        await make(db, scene, f"tip-{n:02}", f"tip {n}")
    await make(db, scene, "faq", "answers")
    await db.snippets.add_alias(
        scene.guild.id, "faq", "help", actor_id=scene.member.id, is_moderator=False
    )
    await db.snippets.set_locked(
        scene.guild.id, "faq", True, actor_id=scene.mod.id, is_moderator=True
    )
    for _ in range(3):
        await db.snippets.use(scene.guild.id, "faq")
    await db.snippets.use(scene.guild.id, "tip-05")
    [reply] = await say(f"{p(db)}snippets", scene.member)
    embed = reply.embeds[0]
    lines = (embed.description or "").splitlines()
    assert embed.title == "Snippets"
    assert lines[:3] == [
        "`faq` · 3 uses · aka `help` · locked",
        "`tip-05` · 1 use",
        "`tip-00` · 0 uses",
    ]
    assert len(lines) == 10
    assert embed.footer.text == f"Page 1 · next: {p(db)}snippets 2"
    [reply] = await say(f"{p(db)}snippets 2", scene.member)
    assert (reply.embeds[0].description or "").splitlines() == [
        "`tip-09` · 0 uses",
        "`tip-10` · 0 uses",
        "`tip-11` · 0 uses",
    ]
    assert reply.embeds[0].footer.text == "Page 2"
    [reply] = await say(f"{p(db)}snippets HEL", scene.member)
    assert reply.embeds[0].title == "Snippets matching `HEL`"
    assert (reply.embeds[0].description or "").splitlines() == [
        "`faq` · 3 uses · aka `help` · locked"
    ]
    [reply] = await say(f"{p(db)}snippets tip 2", scene.member)
    assert len((reply.embeds[0].description or "").splitlines()) == 2
    [reply] = await say(f"{p(db)}snippets nothing", scene.member)
    assert reply.content == "There are no snippets matching `nothing`."
    [reply] = await say(f"{p(db)}snippets 3", scene.member)
    assert reply.content == "There are no snippets on page 3."
    [reply] = await say(f"{p(db)}snippets bad.query", scene.member)
    assert "must be up to 100 characters" in reply.content


async def test_info_shows_author_uses_aliases_and_lock(scene: Scene, db: botdata.Database) -> None:
    await make(db, scene, "faq", "answers")
    await db.snippets.add_alias(
        scene.guild.id, "faq", "help", actor_id=scene.member.id, is_moderator=False
    )
    await db.snippets.use(scene.guild.id, "faq")
    [reply] = await say(f"{p(db)}snippet info HELP", scene.other)
    embed = reply.embeds[0]
    assert embed.title == "Snippet faq"
    fields = {f.name: f.value for f in embed.fields}
    assert fields == {
        "Author": f"<@{scene.member.id}>",
        "Uses": "1",
        "Locked": "no",
        "Aliases": "`help`",
    }
    assert (await db.snippets.get(scene.guild.id, "faq")).uses == 1  # info is not a use
    [reply] = await say(f"{p(db)}snippet info nothing", scene.other)
    assert reply.content == "There is no snippet called `nothing`."


# claim ----------------------------------------------------------------------------------------


async def test_claim_only_when_the_author_left(scene: Scene, db: botdata.Database) -> None:
    await make(db, scene, "faq", "answers")
    await make(db, scene, "locked", "kept")
    await db.snippets.set_locked(
        scene.guild.id, "locked", True, actor_id=scene.mod.id, is_moderator=True
    )
    [reply] = await say(f"{p(db)}snippet claim faq", scene.other)
    assert reply.content == "the author is still in the guild"
    assert (await db.snippets.get(scene.guild.id, "faq")).author_id == scene.member.id
    backend.delete_member(scene.member)
    [reply] = await say(f"{p(db)}snippet info faq", scene.other)
    assert dict((f.name, f.value) for f in reply.embeds[0].fields)["Author"] == (
        f"<@{scene.member.id}> (left the server)"
    )
    [reply] = await say(f"{p(db)}snippet claim faq", scene.other)
    assert reply.content == "You are now the author of snippet `faq`."
    assert (await db.snippets.get(scene.guild.id, "faq")).author_id == scene.other.id
    [reply] = await say(f"{p(db)}snippet claim locked", scene.other)
    assert reply.content == "snippet 'locked' is locked"
    assert (await db.snippets.get(scene.guild.id, "locked")).author_id == scene.member.id
    [reply] = await say(f"{p(db)}snippet claim nothing", scene.other)
    assert reply.content == "no snippet called 'nothing'"


# Snippet bans ---------------------------------------------------------------------------------


async def test_a_snippet_banned_member_cannot_create_or_change(
    scene: Scene, db: botdata.Database
) -> None:
    await make(db, scene, "faq", "answers")
    await db.cases.create(
        scene.guild.id, scene.member.id, scene.mod.id, CaseType.SNIPPETBAN, "spam"
    )
    for command in (
        "snippet create new text",
        "snippet edit faq changed",
        "snippet alias faq f",
    ):
        [reply] = await say(f"{p(db)}{command}", scene.member)
        assert reply.content == "You are banned from creating or changing snippets."
    assert await names(db, scene) == ["faq"]
    after = await db.snippets.get(scene.guild.id, "faq")
    assert (after.content, after.aliases) == ("answers", [])
    # Reading is still allowed; the ban is lifted by an unban case.
    [reply] = await say(f"{p(db)}snippet faq", scene.member)
    assert reply.content == "answers"
    await db.cases.create(
        scene.guild.id, scene.member.id, scene.mod.id, CaseType.SNIPPETUNBAN, "ok"
    )
    [reply] = await say(f"{p(db)}snippet create new text", scene.member)
    assert reply.content == "Snippet `new` saved."


# Bad input ------------------------------------------------------------------------------------


async def test_bad_input_gets_a_clear_reply_and_writes_nothing(
    scene: Scene, db: botdata.Database
) -> None:
    await make(db, scene, "faq", "answers")
    cases = {
        'snippet create "two words" text': "snippet name 'two words' must be 1-100 characters",
        "snippet create bad!name text": "snippet name 'bad!name' must be 1-100 characters",
        f"snippet create {'n' * 101} text": "Usage",
        f"snippet create long {'x' * 4001}": "4000",
        "snippet create FAQ again": "the name 'FAQ' is taken in this guild (ignoring case)",
        "snippet create empty": "Missing `content`",
        f"snippet edit faq {'x' * 4001}": "4000",
    }
    for command, expected in cases.items():
        [reply] = await say(f"{p(db)}{command}", scene.member)
        assert expected in reply.content, (command, reply.content)
    assert await names(db, scene) == ["faq"]
    assert (await db.snippets.get(scene.guild.id, "faq")).content == "answers"


# Slash ------------------------------------------------------------------------------------------


async def test_slash_snippet_create_and_get(scene: Scene, db: botdata.Database) -> None:
    [sent] = await slash(scene.bot, scene.member, "snippet create", name="faq", content="hi")
    assert sent.content == "Snippet `faq` saved."
    [sent] = await slash(scene.bot, scene.other, "snippet get", name="FAQ")
    assert sent.content == "hi"
    assert (await db.snippets.get(scene.guild.id, "faq")).uses == 1
    [sent] = await slash(scene.bot, scene.other, "snippets", query="fa")
    assert sent.embed is not None
    assert sent.embed.description == "`faq` · 1 use"
    await dpytest.empty_queue()
