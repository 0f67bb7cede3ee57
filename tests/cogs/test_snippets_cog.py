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
from botdata_cogs.testing import SimulatedGuild, say, slash

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
    scene: SimulatedGuild,
    name: str,
    content: str,
    author: discord.Member | None = None,
) -> SnippetSchema:
    return await db.snippets.create(
        scene.guild.id, name, content, author_id=(author or scene.member).id
    )


async def names(db: botdata.Database, scene: SimulatedGuild) -> list[str]:
    return [s.name for s in await db.snippets.list(scene.guild.id, limit=100)]


# create / get ---------------------------------------------------------------------------------


async def test_create_then_get_posts_the_content_and_counts_uses(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    [reply] = await say(
        f"{p(botdata_db)}snippet create faq Read the **FAQ** first.", simulated_guild.member
    )
    assert reply.content == "Snippet `faq` saved."
    created = await botdata_db.snippets.get(simulated_guild.guild.id, "faq")
    assert (created.content, created.author_id, created.uses) == (
        "Read the **FAQ** first.",
        simulated_guild.member.id,
        0,
    )
    [reply] = await say(f"{p(botdata_db)}snippet faq", simulated_guild.other)
    assert reply.content == "Read the **FAQ** first."
    [reply] = await say(f"{p(botdata_db)}snippet FAQ", simulated_guild.other)
    assert reply.content == "Read the **FAQ** first."
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).uses == 2
    [reply] = await say(f"{p(botdata_db)}snippet nothing", simulated_guild.other)
    assert reply.content == "There is no snippet called `nothing`."


async def test_a_long_snippet_is_posted_as_an_embed(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    text = "word " * 700
    await say(f"{p(botdata_db)}snippet create long {text}", simulated_guild.member)
    assert len((await botdata_db.snippets.get(simulated_guild.guild.id, "long")).content) > 2000
    [reply] = await say(f"{p(botdata_db)}snippet long", simulated_guild.member)
    assert reply.content in (None, "")
    assert reply.embeds[0].description == text.strip()


async def test_emoji_count_twice_in_discord_limits(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    # 1500 emoji are 3000 UTF-16 units: too long for a message's content.
    await make(botdata_db, simulated_guild, "smiles", "\U0001f600" * 1500)
    [reply] = await say(f"{p(botdata_db)}snippet smiles", simulated_guild.member)
    assert reply.content in (None, "")
    assert reply.embeds[0].description == "\U0001f600" * 1500
    # 4000 emoji do not fit an embed's description either: cut there.
    await make(botdata_db, simulated_guild, "more", "\U0001f600" * 4000)
    [reply] = await say(f"{p(botdata_db)}snippet more", simulated_guild.member)
    description = reply.embeds[0].description or ""
    assert limits.length(description) <= limits.EMBED_DESCRIPTION
    assert description.endswith(limits.ELLIPSIS)


async def test_snippet_content_pings_nobody(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, sent: list[dict[str, Any]]
) -> None:
    await make(
        botdata_db,
        simulated_guild,
        "ping",
        f"@everyone @here <@&{simulated_guild.mod_role.id}> <@{simulated_guild.mod.id}>",
    )
    sent.clear()
    [reply] = await say(f"{p(botdata_db)}snippet ping", simulated_guild.member)
    assert reply.content.startswith("@everyone")
    [payload] = sent
    assert payload["content"] == reply.content
    assert payload["allowed_mentions"] == PINGS_NOBODY
    sent.clear()
    [reply] = await say(f"{p(botdata_db)}ping", simulated_guild.member)
    assert [s["allowed_mentions"] for s in sent] == [PINGS_NOBODY]


# The short form <prefix><name> ----------------------------------------------------------------


async def test_short_form_posts_the_snippet_and_counts_a_use(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "rules", "Be nice.")
    await botdata_db.snippets.add_alias(
        simulated_guild.guild.id,
        "rules",
        "r",
        actor_id=simulated_guild.member.id,
        is_moderator=False,
    )
    [reply] = await say(f"{p(botdata_db)}rules", simulated_guild.other)
    assert reply.content == "Be nice."
    [reply] = await say(f"{p(botdata_db)}R please", simulated_guild.other)
    assert reply.content == "Be nice."
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "rules")).uses == 2
    # Not a snippet, not a valid name, no prefix, a bot: silence and no use counted.
    assert await say(f"{p(botdata_db)}unknown", simulated_guild.other) == []
    assert await say(f"{p(botdata_db)}bad!name", simulated_guild.other) == []
    assert await say("rules", simulated_guild.other) == []
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "rules")).uses == 2


async def test_commands_win_over_snippets_of_the_same_name(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "snippets", "shadowed")
    [reply] = await say(f"{p(botdata_db)}snippets", simulated_guild.other)
    assert reply.embeds[0].title == "Snippets"  # the list command, not the snippet
    [reply] = await say(f"{p(botdata_db)}snippet snippets", simulated_guild.other)
    assert reply.content == "shadowed"


async def test_short_form_obeys_the_access_rules(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "rules", "Be nice.")
    await botdata_db.permissions.add_rule(
        simulated_guild.guild.id,
        access=AccessType.IGNORE,
        target_type=PermissionType.MEMBER,
        target_id=simulated_guild.other.id,
        module="snippets",
    )
    assert await say(f"{p(botdata_db)}rules", simulated_guild.other) == []
    await botdata_db.permissions.add_rule(
        simulated_guild.guild.id,
        access=AccessType.BLACKLIST,
        target_type=PermissionType.MEMBER,
        target_id=simulated_guild.member.id,
        command="snippet",
    )
    [reply] = await say(f"{p(botdata_db)}rules", simulated_guild.member)
    assert reply.content == "That command is not allowed for you here."
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "rules")).uses == 0


# edit / delete --------------------------------------------------------------------------------


async def test_only_the_author_or_a_moderator_edits(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "v1")
    [reply] = await say(f"{p(botdata_db)}snippet edit faq hijacked", simulated_guild.other)
    assert reply.content == "only the author or a moderator may change 'faq'"
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).content == "v1"
    [reply] = await say(f"{p(botdata_db)}snippet edit FAQ v2", simulated_guild.member)
    assert reply.content == "Snippet `faq` updated."
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).content == "v2"
    [reply] = await say(f"{p(botdata_db)}snippet edit faq v3 by a mod", simulated_guild.mod)
    assert reply.content == "Snippet `faq` updated."
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).content == "v3 by a mod"


async def test_manage_messages_makes_a_moderator(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "v1")
    helpers = backend.make_role(
        "Helpers",
        simulated_guild.guild,
        permissions=discord.Permissions(manage_messages=True).value,
    )
    helpers.position = 3
    await dpytest.add_role(simulated_guild.other, helpers)
    [reply] = await say(f"{p(botdata_db)}snippet edit faq by a helper", simulated_guild.other)
    assert reply.content == "Snippet `faq` updated."
    [reply] = await say(f"{p(botdata_db)}snippet lock faq", simulated_guild.other)
    assert reply.content == "Snippet `faq` is locked."


async def test_only_the_author_or_a_moderator_deletes(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "one", "1")
    await make(botdata_db, simulated_guild, "two", "2")
    [reply] = await say(f"{p(botdata_db)}snippet delete one", simulated_guild.other)
    assert "only the author or a moderator" in reply.content
    assert await names(botdata_db, simulated_guild) == ["one", "two"]
    [reply] = await say(f"{p(botdata_db)}snippet delete one", simulated_guild.member)
    assert reply.content == "Snippet `one` deleted."
    [reply] = await say(f"{p(botdata_db)}snippet delete two", simulated_guild.mod)
    assert reply.content == "Snippet `two` deleted."
    assert await names(botdata_db, simulated_guild) == []
    [reply] = await say(f"{p(botdata_db)}snippet delete two", simulated_guild.mod)
    assert reply.content == "no snippet called 'two'"


# alias ----------------------------------------------------------------------------------------


async def test_alias_and_unalias(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "answers")
    await make(botdata_db, simulated_guild, "other", "x", author=simulated_guild.other)
    [reply] = await say(f"{p(botdata_db)}snippet alias faq questions", simulated_guild.member)
    assert reply.content == "`questions` now also calls up snippet `faq`."
    [reply] = await say(f"{p(botdata_db)}snippet questions", simulated_guild.other)
    assert reply.content == "answers"
    for taken in ("QUESTIONS", "Other", "FAQ"):
        [reply] = await say(f"{p(botdata_db)}snippet alias faq {taken}", simulated_guild.member)
        assert reply.content == f"the name '{taken}' is taken in this guild (ignoring case)"
    [reply] = await say(f"{p(botdata_db)}snippet alias faq bad.alias", simulated_guild.member)
    assert "must be 1-100 characters" in reply.content
    [reply] = await say(f"{p(botdata_db)}snippet alias faq mine", simulated_guild.other)
    assert "only the author or a moderator" in reply.content
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).aliases == ["questions"]
    [reply] = await say(f"{p(botdata_db)}snippet unalias questions", simulated_guild.other)
    assert "only the author or a moderator" in reply.content
    [reply] = await say(f"{p(botdata_db)}snippet unalias questions", simulated_guild.member)
    assert reply.content == "`questions` no longer calls up snippet `faq`."
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).aliases == []


async def test_aliases_are_capped(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "answers")
    for n in range(MAX_ALIASES):
        await botdata_db.snippets.add_alias(
            simulated_guild.guild.id,
            "faq",
            f"a{n}",
            actor_id=simulated_guild.member.id,
            is_moderator=False,
        )
    [reply] = await say(f"{p(botdata_db)}snippet alias faq one-more", simulated_guild.member)
    assert reply.content == f"a snippet has at most {MAX_ALIASES} aliases; remove one first"
    assert (
        len((await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).aliases) == MAX_ALIASES
    )


async def add_raw_aliases(
    db: botdata.Database, scene: SimulatedGuild, name: str, count: int
) -> None:
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
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    # 40 aliases of 100 characters made "snippet info" and "snippets" too big to send.
    for n in range(10):
        await make(botdata_db, simulated_guild, f"s{n}", "text")
        await add_raw_aliases(botdata_db, simulated_guild, f"s{n}", 40)
    [reply] = await say(f"{p(botdata_db)}snippet info s3", simulated_guild.member)
    [embed] = reply.embeds
    aliases = {field.name: field.value for field in embed.fields}["Aliases"] or ""
    assert limits.length(aliases) <= limits.FIELD_VALUE
    shown = aliases.count("`") // 2
    assert 1 <= shown < 40
    assert aliases.endswith(f" and {40 - shown} more")
    assert limits.embed_length(embed) <= limits.EMBED_TOTAL

    [reply] = await say(f"{p(botdata_db)}snippets", simulated_guild.member)
    [embed] = reply.embeds
    lines = (embed.description or "").splitlines()
    assert len(lines) == 10  # every snippet of the page, none cut off
    for line in lines:
        assert line.startswith("`s")
        assert line.endswith(" more"), line
    assert limits.length(embed.description or "") <= limits.EMBED_DESCRIPTION
    assert limits.embed_length(embed) <= limits.EMBED_TOTAL
    [reply] = await say(f"{p(botdata_db)}snippets s3-039", simulated_guild.member)
    assert (reply.embeds[0].description or "").startswith("`s3` · 0 uses · aka `s3-000-")


# lock / unlock --------------------------------------------------------------------------------


async def test_a_locked_snippet_is_changed_by_moderators_only(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "v1")
    [reply] = await say(f"{p(botdata_db)}snippet lock faq", simulated_guild.member)
    assert reply.content == "You need permission level 2 or the manage messages permission."
    assert not (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).locked
    [reply] = await say(f"{p(botdata_db)}snippet lock faq", simulated_guild.mod)
    assert reply.content == "Snippet `faq` is locked."
    for command in ("snippet edit faq v2", "snippet delete faq", "snippet alias faq f"):
        [reply] = await say(f"{p(botdata_db)}{command}", simulated_guild.member)
        assert reply.content == "snippet 'faq' is locked"
    after = await botdata_db.snippets.get(simulated_guild.guild.id, "faq")
    assert (after.content, after.aliases, after.locked) == ("v1", [], True)
    [reply] = await say(f"{p(botdata_db)}snippet edit faq v2", simulated_guild.mod)
    assert reply.content == "Snippet `faq` updated."
    [reply] = await say(f"{p(botdata_db)}snippet unlock faq", simulated_guild.member)
    assert "permission level 2" in reply.content
    [reply] = await say(f"{p(botdata_db)}snippet unlock faq", simulated_guild.mod)
    assert reply.content == "Snippet `faq` is unlocked."
    [reply] = await say(f"{p(botdata_db)}snippet edit faq v3", simulated_guild.member)
    assert reply.content == "Snippet `faq` updated."
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).content == "v3"


# snippets [query] [page] / info -------------------------------------------------------------


async def test_list_most_used_first_with_search_and_pages(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    for n in range(12):
        await make(botdata_db, simulated_guild, f"tip-{n:02}", f"tip {n}")
    await make(botdata_db, simulated_guild, "faq", "answers")
    await botdata_db.snippets.add_alias(
        simulated_guild.guild.id,
        "faq",
        "help",
        actor_id=simulated_guild.member.id,
        is_moderator=False,
    )
    await botdata_db.snippets.set_locked(
        simulated_guild.guild.id, "faq", True, actor_id=simulated_guild.mod.id, is_moderator=True
    )
    for _ in range(3):
        await botdata_db.snippets.use(simulated_guild.guild.id, "faq")
    await botdata_db.snippets.use(simulated_guild.guild.id, "tip-05")
    [reply] = await say(f"{p(botdata_db)}snippets", simulated_guild.member)
    embed = reply.embeds[0]
    lines = (embed.description or "").splitlines()
    assert embed.title == "Snippets"
    assert lines[:3] == [
        "`faq` · 3 uses · aka `help` · locked",
        "`tip-05` · 1 use",
        "`tip-00` · 0 uses",
    ]
    assert len(lines) == 10
    assert embed.footer.text == f"Page 1 · next: {p(botdata_db)}snippets 2"
    [reply] = await say(f"{p(botdata_db)}snippets 2", simulated_guild.member)
    assert (reply.embeds[0].description or "").splitlines() == [
        "`tip-09` · 0 uses",
        "`tip-10` · 0 uses",
        "`tip-11` · 0 uses",
    ]
    assert reply.embeds[0].footer.text == "Page 2"
    [reply] = await say(f"{p(botdata_db)}snippets HEL", simulated_guild.member)
    assert reply.embeds[0].title == "Snippets matching `HEL`"
    assert (reply.embeds[0].description or "").splitlines() == [
        "`faq` · 3 uses · aka `help` · locked"
    ]
    [reply] = await say(f"{p(botdata_db)}snippets tip 2", simulated_guild.member)
    assert len((reply.embeds[0].description or "").splitlines()) == 2
    [reply] = await say(f"{p(botdata_db)}snippets nothing", simulated_guild.member)
    assert reply.content == "There are no snippets matching `nothing`."
    [reply] = await say(f"{p(botdata_db)}snippets 3", simulated_guild.member)
    assert reply.content == "There are no snippets on page 3."
    [reply] = await say(f"{p(botdata_db)}snippets bad.query", simulated_guild.member)
    assert "must be up to 100 characters" in reply.content


async def test_info_shows_author_uses_aliases_and_lock(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "answers")
    await botdata_db.snippets.add_alias(
        simulated_guild.guild.id,
        "faq",
        "help",
        actor_id=simulated_guild.member.id,
        is_moderator=False,
    )
    await botdata_db.snippets.use(simulated_guild.guild.id, "faq")
    [reply] = await say(f"{p(botdata_db)}snippet info HELP", simulated_guild.other)
    embed = reply.embeds[0]
    assert embed.title == "Snippet faq"
    fields = {f.name: f.value for f in embed.fields}
    assert fields == {
        "Author": f"<@{simulated_guild.member.id}>",
        "Uses": "1",
        "Locked": "no",
        "Aliases": "`help`",
    }
    assert (
        await botdata_db.snippets.get(simulated_guild.guild.id, "faq")
    ).uses == 1  # info is not a use
    [reply] = await say(f"{p(botdata_db)}snippet info nothing", simulated_guild.other)
    assert reply.content == "There is no snippet called `nothing`."


# claim ----------------------------------------------------------------------------------------


async def test_claim_only_when_the_author_left(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "answers")
    await make(botdata_db, simulated_guild, "locked", "kept")
    await botdata_db.snippets.set_locked(
        simulated_guild.guild.id, "locked", True, actor_id=simulated_guild.mod.id, is_moderator=True
    )
    [reply] = await say(f"{p(botdata_db)}snippet claim faq", simulated_guild.other)
    assert reply.content == "the author is still in the guild"
    assert (
        await botdata_db.snippets.get(simulated_guild.guild.id, "faq")
    ).author_id == simulated_guild.member.id
    backend.delete_member(simulated_guild.member)
    [reply] = await say(f"{p(botdata_db)}snippet info faq", simulated_guild.other)
    assert dict((f.name, f.value) for f in reply.embeds[0].fields)["Author"] == (
        f"<@{simulated_guild.member.id}> (left the server)"
    )
    [reply] = await say(f"{p(botdata_db)}snippet claim faq", simulated_guild.other)
    assert reply.content == "You are now the author of snippet `faq`."
    assert (
        await botdata_db.snippets.get(simulated_guild.guild.id, "faq")
    ).author_id == simulated_guild.other.id
    [reply] = await say(f"{p(botdata_db)}snippet claim locked", simulated_guild.other)
    assert reply.content == "snippet 'locked' is locked"
    assert (
        await botdata_db.snippets.get(simulated_guild.guild.id, "locked")
    ).author_id == simulated_guild.member.id
    [reply] = await say(f"{p(botdata_db)}snippet claim nothing", simulated_guild.other)
    assert reply.content == "no snippet called 'nothing'"


# Snippet bans ---------------------------------------------------------------------------------


async def test_a_snippet_banned_member_cannot_create_or_change(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "answers")
    await botdata_db.cases.create(
        simulated_guild.guild.id,
        simulated_guild.member.id,
        simulated_guild.mod.id,
        CaseType.SNIPPETBAN,
        "spam",
    )
    for command in (
        "snippet create new text",
        "snippet edit faq changed",
        "snippet alias faq f",
    ):
        [reply] = await say(f"{p(botdata_db)}{command}", simulated_guild.member)
        assert reply.content == "You are banned from creating or changing snippets."
    assert await names(botdata_db, simulated_guild) == ["faq"]
    after = await botdata_db.snippets.get(simulated_guild.guild.id, "faq")
    assert (after.content, after.aliases) == ("answers", [])
    # Reading is still allowed; the ban is lifted by an unban case.
    [reply] = await say(f"{p(botdata_db)}snippet faq", simulated_guild.member)
    assert reply.content == "answers"
    await botdata_db.cases.create(
        simulated_guild.guild.id,
        simulated_guild.member.id,
        simulated_guild.mod.id,
        CaseType.SNIPPETUNBAN,
        "ok",
    )
    [reply] = await say(f"{p(botdata_db)}snippet create new text", simulated_guild.member)
    assert reply.content == "Snippet `new` saved."


# Bad input ------------------------------------------------------------------------------------


async def test_bad_input_gets_a_clear_reply_and_writes_nothing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await make(botdata_db, simulated_guild, "faq", "answers")
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
        [reply] = await say(f"{p(botdata_db)}{command}", simulated_guild.member)
        assert expected in reply.content, (command, reply.content)
    assert await names(botdata_db, simulated_guild) == ["faq"]
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).content == "answers"


# Slash ------------------------------------------------------------------------------------------


async def test_slash_snippet_create_and_get(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    [sent] = await slash(
        simulated_guild.bot, simulated_guild.member, "snippet create", name="faq", content="hi"
    )
    assert sent.content == "Snippet `faq` saved."
    [sent] = await slash(simulated_guild.bot, simulated_guild.other, "snippet get", name="FAQ")
    assert sent.content == "hi"
    assert (await botdata_db.snippets.get(simulated_guild.guild.id, "faq")).uses == 1
    [sent] = await slash(simulated_guild.bot, simulated_guild.other, "snippets", query="fa")
    assert sent.embed is not None
    assert sent.embed.description == "`faq` · 1 use"
    await dpytest.empty_queue()
