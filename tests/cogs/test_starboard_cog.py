"""The starboard cog: commands as a member types them, stars as Discord's gateway sends them.

dpytest 0.7's ``add_reaction`` does not work with discord.py 2.7; :func:`react` goes through
:func:`botdata_cogs.testing.react`, which hands Discord's own payload to discord.py's gateway
parser.
"""

from __future__ import annotations

from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend

import botdata
from botdata_cogs import limits, testing
from botdata_cogs.testing import SimulatedGuild, say, slash

STAR = "\u2b50"


@pytest.fixture
async def board(simulated_guild: SimulatedGuild) -> discord.TextChannel:
    """The channel to use as the starboard."""
    return backend.make_text_channel("starboard", simulated_guild.guild)


async def sent() -> list[discord.Message]:
    """What the bot sent since the last call."""
    out = []
    while not dpytest.sent_queue.empty():
        out.append(await dpytest.sent_queue.get())
    return out


async def react(
    member: discord.Member, message: discord.Message, emoji: str = STAR, *, add: bool = True
) -> list[discord.Message]:
    """``member`` adds (or removes) a reaction as the gateway reports it; what the bot sent."""
    await testing.react(member, message, emoji, add=add)
    return await sent()


async def post(member: discord.Member, content: str, **kwargs: Any) -> discord.Message:
    """``member`` posts a message (not a command) in the first channel."""
    message = await dpytest.message(content, member=member, **kwargs)
    await sent()
    return message


async def test_setup_show_and_remove(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}starboard", simulated_guild.mod)
    assert reply.content == "This server has no starboard: see `starboard setup`."
    [reply] = await say(f"{p}starboard setup {board.mention}", simulated_guild.mod)
    assert reply.content == f"Starboard: 3 {STAR} in <#{board.id}>, self-stars do not count."
    settings = await botdata_db.starboard.get(simulated_guild.guild.id)
    assert settings is not None
    assert (settings.channel_id, settings.emoji, settings.threshold) == (board.id, STAR, 3)
    assert settings.allow_self_star is False

    party = "<:party:123456789012345678>"
    [reply] = await say(f"{p}starboard setup {board.mention} {party} 2 yes", simulated_guild.mod)
    assert reply.content == f"Starboard: 2 {party} in <#{board.id}>, self-stars count."
    settings = await botdata_db.starboard.get(simulated_guild.guild.id)
    assert settings is not None
    assert (settings.emoji, settings.threshold, settings.allow_self_star) == (party, 2, True)
    [reply] = await say(f"{p}starboard", simulated_guild.mod)
    assert reply.content == f"Starboard: 2 {party} in <#{board.id}>, self-stars count."

    [reply] = await say(f"{p}starboard remove", simulated_guild.mod)
    assert reply.content == "Starboard turned off; the copies already posted stay."
    assert await botdata_db.starboard.get(simulated_guild.guild.id) is None
    [reply] = await say(f"{p}starboard remove", simulated_guild.mod)
    assert reply.content == "This server has no starboard."


async def test_a_member_without_the_level_is_refused(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}starboard setup {board.mention}", simulated_guild.member)
    assert "permission level 5" in reply.content
    assert await botdata_db.starboard.get(simulated_guild.guild.id) is None
    await botdata_db.starboard.configure(simulated_guild.guild.id, channel_id=board.id, threshold=4)
    [reply] = await say(f"{p}starboard remove", simulated_guild.member)
    assert "permission level 5" in reply.content
    settings = await botdata_db.starboard.get(simulated_guild.guild.id)
    assert settings is not None
    assert settings.threshold == 4


async def test_bad_input_gets_a_clear_reply_and_writes_nothing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}starboard setup {board.mention} {STAR} 0", simulated_guild.mod)
    assert "between 1 and" in reply.content
    assert "Usage" in reply.content
    [reply] = await say(f"{p}starboard setup {board.mention} star 2", simulated_guild.mod)
    assert "`star` is not an emoji." in reply.content
    [reply] = await say(f"{p}starboard setup {board.mention} {STAR} 2 maybe", simulated_guild.mod)
    assert "Usage" in reply.content
    [reply] = await say(f"{p}starboard setup nowhere", simulated_guild.mod)
    assert "Usage" in reply.content
    # A channel where the bot (no longer an administrator) may not send: dpytest's
    # set_permission_overrides writes overwrite types discord.py 2 does not read.
    not_admin = discord.Permissions.all()
    not_admin.administrator = False
    backend.update_role(simulated_guild.guild.me.top_role, permissions=not_admin.value)
    deny = discord.Permissions(send_messages=True).value
    closed = backend.make_text_channel(
        "closed",
        simulated_guild.guild,
        permission_overwrites=[
            {"id": simulated_guild.guild.me.top_role.id, "type": 0, "allow": "0", "deny": str(deny)}
        ],
    )
    [reply] = await say(f"{p}starboard setup {closed.mention}", simulated_guild.mod)
    assert reply.content == f"I need send messages, embed links in {closed.mention}."
    assert await botdata_db.starboard.get(simulated_guild.guild.id) is None


async def test_stars_post_update_and_remove_the_copy(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    await say(f"{p}starboard setup {board.mention} {STAR} 2", simulated_guild.mod)
    fourth = await dpytest.member_join(simulated_guild.guild, name="Fourth")
    original = await post(
        simulated_guild.member, "what a @everyone message", attachments=["cat.png"]
    )

    assert await react(simulated_guild.other, original) == []  # 1 star: below the threshold
    assert await react(simulated_guild.member, original) == []  # the author's own star: ignored
    assert await react(simulated_guild.guild.me, original) == []  # bots' stars: ignored, this bot's
    robot = backend.make_user("Robot", "0001")
    robot.bot = True
    assert (
        await react(backend.make_member(robot, simulated_guild.guild), original) == []
    )  # other bots'
    assert await react(simulated_guild.mod, original, "\U0001f44d") == []  # another emoji: ignored
    entry = await botdata_db.starboard.get_message(simulated_guild.guild.id, original.id)
    assert entry is not None
    assert entry.stars == 1

    [copy] = await react(simulated_guild.mod, original)  # 2 stars: posted
    assert copy.channel.id == board.id
    assert copy.content == f"{STAR} 2 | <#{simulated_guild.channel.id}>"
    [embed] = copy.embeds
    assert embed.description == "what a @everyone message"
    assert embed.author.name == simulated_guild.member.display_name
    assert embed.image.url == "cat.png"
    assert original.jump_url in embed.fields[0].value
    entry = await botdata_db.starboard.get_message(simulated_guild.guild.id, original.id)
    assert entry is not None
    assert (entry.stars, entry.starboard_message_id) == (2, copy.id)

    assert await react(fourth, copy) == []  # a star on the copy counts for the original: 3
    assert (
        await board.fetch_message(copy.id)
    ).content == f"{STAR} 3 | <#{simulated_guild.channel.id}>"
    assert await react(simulated_guild.other, copy) == []  # already starred the original: no change
    assert (await board.fetch_message(copy.id)).content.startswith(f"{STAR} 3 |")

    await react(fourth, copy, add=False)  # back to 2
    assert (
        await board.fetch_message(copy.id)
    ).content == f"{STAR} 2 | <#{simulated_guild.channel.id}>"
    await react(simulated_guild.mod, original, add=False)  # 1: below the threshold, the copy goes
    with pytest.raises(discord.NotFound):
        await board.fetch_message(copy.id)
    entry = await botdata_db.starboard.get_message(simulated_guild.guild.id, original.id)
    assert entry is not None
    assert (entry.stars, entry.starboard_message_id) == (1, None)

    [again] = await react(simulated_guild.mod, original)  # crossing the threshold again posts again
    assert again.content == f"{STAR} 2 | <#{simulated_guild.channel.id}>"


async def test_reactions_are_ignored_without_a_starboard_and_on_its_own_messages(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    original = await post(simulated_guild.member, "hello")
    await react(simulated_guild.other, original)
    assert await botdata_db.starboard.get_message(simulated_guild.guild.id, original.id) is None

    await botdata_db.starboard.configure(simulated_guild.guild.id, channel_id=board.id, threshold=1)
    notice = await board.send("a message of the starboard channel that is not a copy")
    await sent()
    assert await react(simulated_guild.other, notice) == []
    assert await botdata_db.starboard.get_message(simulated_guild.guild.id, notice.id) is None


async def test_a_starboard_module_rule_stops_the_members_stars(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    await botdata_db.starboard.configure(simulated_guild.guild.id, channel_id=board.id, threshold=1)
    [reply] = await say(
        f"{p}perm deny starboard {simulated_guild.other.mention}", simulated_guild.mod
    )
    assert "deny module `starboard`" in reply.content
    original = await post(simulated_guild.member, "star me")
    assert await react(simulated_guild.other, original) == []
    assert await botdata_db.starboard.get_message(simulated_guild.guild.id, original.id) is None
    assert (
        await react(simulated_guild.other, original, add=False) == []
    )  # a star never counted: no-op
    [copy] = await react(simulated_guild.mod, original)
    assert copy.content == f"{STAR} 1 | <#{simulated_guild.channel.id}>"


async def test_the_copy_of_a_long_message_fits_in_an_embed(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    await botdata_db.starboard.configure(simulated_guild.guild.id, channel_id=board.id, threshold=1)
    original = await post(simulated_guild.member, "\U0001f600" * 3000)  # 6000 UTF-16 units
    [copy] = await react(simulated_guild.other, original)
    [embed] = copy.embeds
    assert embed.description is not None
    assert limits.length(embed.description) <= limits.EMBED_DESCRIPTION
    assert embed.description.endswith(limits.ELLIPSIS)
    assert len(embed) <= limits.EMBED_TOTAL


async def test_custom_emoji_and_allowed_self_stars(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    party = "<:party:123456789012345678>"
    await botdata_db.starboard.configure(
        simulated_guild.guild.id,
        channel_id=board.id,
        emoji=party,
        threshold=1,
        allow_self_star=True,
    )
    original = await post(simulated_guild.member, "mine")
    assert await react(simulated_guild.member, original, "<:other:876543210987654321>") == []
    [copy] = await react(simulated_guild.member, original, party)
    assert copy.content == f"{party} 1 | <#{simulated_guild.channel.id}>"


async def test_slash_remove(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, board: discord.TextChannel
) -> None:
    await botdata_db.starboard.configure(simulated_guild.guild.id, channel_id=board.id)
    [reply] = await slash(simulated_guild.bot, simulated_guild.mod, "starboard remove")
    assert reply.content == "Starboard turned off; the copies already posted stay."
    assert await botdata_db.starboard.get(simulated_guild.guild.id) is None
    await botdata_db.starboard.configure(simulated_guild.guild.id, channel_id=board.id)
    [refused] = await slash(simulated_guild.bot, simulated_guild.member, "starboard remove")
    assert refused.content is not None
    assert "permission level 5" in refused.content
    assert await botdata_db.starboard.get(simulated_guild.guild.id) is not None
