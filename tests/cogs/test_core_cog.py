"""What every cog shares (botdata_cogs.core): the rate limit and who is exempt from it, durations,
refusals that quote member input, and replies to a database that is down (both backends)."""

from __future__ import annotations

import logging

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext import commands
from discord.ext.test import backend

import botdata
from botdata.errors import DatabaseUnavailableError
from botdata_cogs import limits
from botdata_cogs.core import HANDLE, BotdataCog, NoHandleError, handle
from botdata_cogs.testing import SimulatedGuild, say

SECRET_URL = "postgres://bot:hunter2@db.internal:5432/bot"


def prefix(db: botdata.Database) -> str:
    return db.settings.DEFAULT_PREFIX


# The rate limit -------------------------------------------------------------------------------


async def test_staff_are_not_rate_limited_members_are(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    over = botdata_db.settings.COMMAND_RATE_LIMIT + 2
    for number in range(1, over + 1):  # a moderator (level 5) in the middle of a raid
        sent = await say(f"{p}warn {simulated_guild.member.mention} raid", simulated_guild.mod)
        [reply] = [m.content for m in sent if m.channel.id == simulated_guild.channel.id]
        assert reply == f"Case #{number}: {simulated_guild.member} was warned.", number
    simulated_guild.guild.owner_id = (
        simulated_guild.other.id
    )  # the owner, without any level or Discord permission
    for _ in range(over):
        [reply] = await say(f"{p}rank", simulated_guild.other)
        assert "too fast" not in reply.content
    kicker = await dpytest.member_join(simulated_guild.guild, name="Kicker")
    kickers = backend.make_role(
        "Kickers", simulated_guild.guild, permissions=discord.Permissions(kick_members=True).value
    )
    await dpytest.add_role(kicker, kickers)
    for _ in range(over):  # a Discord moderation permission is enough
        [reply] = await say(f"{p}rank", kicker)
        assert "too fast" not in reply.content
    for _ in range(botdata_db.settings.COMMAND_RATE_LIMIT):
        [reply] = await say(f"{p}rank", simulated_guild.member)
        assert "too fast" not in reply.content
    [reply] = await say(f"{p}rank", simulated_guild.member)
    assert reply.content == "You are running commands too fast; wait a little."


# Durations --------------------------------------------------------------------------------------


async def test_every_duration_command_refuses_a_huge_duration(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    member = simulated_guild.member.mention
    for command in (
        "remind 99999999999d stretch",
        f"tempban {member} 99999999999d spam",
        f"timeout {member} 99999999999d spam",
        f"jail {member} 99999999999d spam",
        f"afk set {member} 99999999999d away",
        f"perm deny config {member} 99999999999d",
    ):
        [reply] = await say(f"{p}{command}", simulated_guild.mod)
        assert "at most 5 years" in reply.content, command
    assert (
        await botdata_db.reminders.pending(simulated_guild.guild.id, simulated_guild.mod.id) == []
    )
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None
    assert await botdata_db.cases.search(simulated_guild.guild.id) == []
    assert await botdata_db.permissions.rules(simulated_guild.guild.id) == []


async def test_afk_set_refuses_a_duration_that_does_not_parse(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    for words in ("0s away", "10x away", "2000d away"):
        [reply] = await say(
            f"{p}afk set {simulated_guild.member.mention} {words}", simulated_guild.mod
        )
        assert "not a duration" in reply.content or "at most 5 years" in reply.content, words
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None
    await say(f"{p}afk set {simulated_guild.member.mention} away for now", simulated_guild.mod)
    status = await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id)
    assert status is not None
    assert (status.reason, status.permanent) == ("away for now", True)


# Refusals ---------------------------------------------------------------------------------------


async def test_refusals_quote_only_an_excerpt_of_a_long_argument(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    long = "x" * 1990
    channel = simulated_guild.channel.mention
    for command in (
        f"warn {long}",  # discord.py's MemberNotFound quotes the whole argument
        f"config prefix {long}",  # botdata's InvalidPrefixError quotes its repr
        f"starboard setup {channel} {long}",
        f"levels settings cooldown {long}",
        f"case edit 1 {long}{long}",  # Range: too long, not quoted
    ):
        [reply] = await say(f"{p}{command}", simulated_guild.mod)
        assert limits.length(reply.content) <= limits.REFUSAL, command
        assert "Something went wrong" not in reply.content, command
        assert long not in reply.content, command
    [reply] = await say(f"{p}warn {long}", simulated_guild.mod)
    assert f'Member "{limits.excerpt(long)}" not found.' in reply.content
    assert (await botdata_db.guilds.config(simulated_guild.guild.id)).prefix is None


async def test_refusals_ping_nobody(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    seen: list[object] = []
    original = simulated_guild.bot.http.send_message

    async def send_message(channel_id: int, *, params: object) -> object:
        channel = simulated_guild.channel  # noqa: F841 (dpytest reads it from its caller's locals)
        seen.append(params.payload.get("allowed_mentions"))  # type: ignore[attr-defined]
        return await original(channel_id, params=params)  # type: ignore[arg-type]

    simulated_guild.bot.http.send_message = send_message  # type: ignore[method-assign]
    [reply] = await say(
        f"{prefix(botdata_db)}warn <@{simulated_guild.other.id}>x", simulated_guild.mod
    )
    assert "not found" in reply.content
    assert seen == [{"parse": []}]


# A database that is down ------------------------------------------------------------------------


class Failing(BotdataCog):
    """A cog whose command meets a database that is down."""

    @commands.command(name="failing")
    async def failing(self, ctx: commands.Context) -> None:
        raise DatabaseUnavailableError(f"cannot reach {SECRET_URL}")


async def test_a_database_failure_gets_a_short_reply_naming_nothing_and_is_logged(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, caplog: pytest.LogCaptureFixture
) -> None:
    await simulated_guild.bot.add_cog(Failing(simulated_guild.bot, botdata_db))
    with caplog.at_level(logging.WARNING, logger="botdata_cogs"):
        [reply] = await say(f"{prefix(botdata_db)}failing", simulated_guild.member)
    assert reply.content == "The database is unavailable or busy right now; try again in a moment."
    [record] = [r for r in caplog.records if r.name == "botdata_cogs"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])  # the log has the details, the member does not
    await simulated_guild.bot.remove_cog("Failing")


async def test_handle_is_the_bots_handle_and_refuses_a_bot_without_one(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    assert handle(simulated_guild.bot) is botdata_db
    bare = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    with pytest.raises(NoHandleError):
        handle(bare)
    setattr(bare, HANDLE, "not a handle")
    with pytest.raises(NoHandleError):
        handle(bare)
