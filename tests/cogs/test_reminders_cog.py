"""The reminders cog through dpytest, as members would type it, and its delivery (both backends).

Delivery runs for real: the cog starts ``db.reminders``'s dispatcher when it loads, and the
tests wait (a few seconds at most) for the bot to post. dpytest never sends Discord's READY
event, so the ``ready`` fixture marks the client ready (the cog waits for it before delivering).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import discord
import discord.abc
import discord.ext.test as dpytest
import pytest
from discord.ext import commands
from discord.ext.test import backend, callbacks

import botdata
from botdata_cogs import limits
from botdata_cogs.reminders import MAX_ATTEMPTS
from botdata_cogs.testing import SimulatedGuild, say, slash


@pytest.fixture(autouse=True)
def ready(botdata_bot: commands.Bot) -> None:
    botdata_bot._ready.set()  # type: ignore[attr-defined]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The payload (content, allowed_mentions) of every message the bot sends from now on."""
    payloads: list[dict[str, Any]] = []
    original: Callable[..., Any] = discord.abc.handle_message_parameters

    def recording(*args: Any, **kwargs: Any) -> Any:
        params = original(*args, **kwargs)
        payloads.append(params.payload or {})
        return params

    monkeypatch.setattr(discord.abc, "handle_message_parameters", recording)
    return payloads


@pytest.fixture
def dmed() -> Iterator[list[int]]:
    """The id of each user the bot opens a DM with (dpytest's DM channels have no recipient)."""
    users: list[int] = []

    async def record(user: discord.abc.User) -> None:
        users.append(user.id)

    callbacks.set_callback(record, "start_private_message")
    yield users
    callbacks.remove_callback("start_private_message")


def p(db: botdata.Database) -> str:
    return db.settings.DEFAULT_PREFIX


async def posted(timeout: float = 5.0) -> discord.Message:
    """The next message the bot sends, waiting up to ``timeout`` seconds for it."""
    return await asyncio.wait_for(dpytest.sent_queue.get(), timeout)


async def pending(db: botdata.Database, scene: SimulatedGuild, member: discord.Member) -> list[str]:
    return [r.content for r in await db.reminders.pending(scene.guild.id, member.id)]


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds, checking every 50 ms for up to ``timeout`` seconds."""

    async def poll() -> None:
        while not await condition():  # noqa: ASYNC110 (the database is polled, not an event)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def wait_sent(db: botdata.Database, scene: SimulatedGuild, member: discord.Member) -> None:
    """Wait until the member has no pending reminder (the dispatcher marked it sent)."""

    async def none_pending() -> bool:
        return not await db.reminders.pending(scene.guild.id, member.id)

    await until(none_pending)


# remind <when> <what> ---------------------------------------------------------------------------


async def test_remind_sets_a_reminder_in_the_channel(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    before = datetime.now(timezone.utc)
    [reply] = await say(f"{p(botdata_db)}remind 2h30m stretch your legs", simulated_guild.member)
    [reminder] = await botdata_db.reminders.pending(
        simulated_guild.guild.id, simulated_guild.member.id
    )
    assert reply.content.startswith(f"Reminder #{reminder.id} set for <t:")
    assert (reminder.content, reminder.channel_id) == (
        "stretch your legs",
        simulated_guild.channel.id,
    )
    due = reminder.due_at - before
    assert timedelta(hours=2, minutes=30) <= due < timedelta(hours=2, minutes=30, seconds=5)
    await say(f"{p(botdata_db)}remind 1d tomorrow", simulated_guild.member)
    await say(f"{p(botdata_db)}remind 10m soon", simulated_guild.member)
    assert await pending(botdata_db, simulated_guild, simulated_guild.member) == [
        "soon",
        "stretch your legs",
        "tomorrow",
    ]


async def test_bad_reminders_get_a_clear_reply_and_write_nothing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    cases = {
        "remind 10x hello": "`10x` is not a duration like 10m, 2h30m or 1d.",
        "remind 0m hello": "more than 0",
        "remind 6000d hello": "at most 5 years",
        "remind 10m": "Missing `what`",
        f"remind 10m {'x' * 2001}": "2000",
    }
    for command, expected in cases.items():
        [reply] = await say(f"{p(botdata_db)}{command}", simulated_guild.member)
        assert expected in reply.content, (command, reply.content)
        assert "Usage" in reply.content
    assert await pending(botdata_db, simulated_guild, simulated_guild.member) == []


async def test_the_pending_limit_is_enforced(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    due = datetime.now(timezone.utc) + timedelta(hours=1)
    for n in range(botdata_db.settings.REMINDER_MAX_PER_USER):
        await botdata_db.reminders.create(
            simulated_guild.guild.id,
            simulated_guild.member.id,
            simulated_guild.channel.id,
            f"{n}",
            due,
        )
    [reply] = await say(f"{p(botdata_db)}remind 10m one too many", simulated_guild.member)
    assert "pending reminders already" in reply.content
    assert "one too many" not in await pending(botdata_db, simulated_guild, simulated_guild.member)


# reminders / reminder cancel ------------------------------------------------------------------


async def test_reminders_lists_only_your_own(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    [reply] = await say(f"{p(botdata_db)}reminders", simulated_guild.member)
    assert reply.content == "You have no pending reminders."
    await say(f"{p(botdata_db)}remind 1h later **bold**", simulated_guild.member)
    await say(f"{p(botdata_db)}remind 10m sooner", simulated_guild.member)
    await say(f"{p(botdata_db)}remind 5m not yours", simulated_guild.other)
    mine = await botdata_db.reminders.pending(simulated_guild.guild.id, simulated_guild.member.id)
    [reply] = await say(f"{p(botdata_db)}reminders", simulated_guild.member)
    embed = reply.embeds[0]
    assert embed.title == "Your reminders"
    first, second = (embed.description or "").splitlines()
    assert first.startswith(f"**#{mine[0].id}** <t:")
    assert first.endswith("· sooner")
    assert second.endswith(r"· later \*\*bold\*\*")
    assert embed.footer.text == f"Cancel one with {p(botdata_db)}reminder cancel <id>"


async def test_a_long_list_of_reminders_fits_one_embed(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(botdata_db.settings, "REMINDER_MAX_PER_USER", 60)
    due = datetime.now(timezone.utc) + timedelta(hours=1)
    for n in range(60):
        await botdata_db.reminders.create(
            simulated_guild.guild.id,
            simulated_guild.member.id,
            simulated_guild.channel.id,
            f"{n:02} " + "x" * 1990,
            due,
        )
    [reply] = await say(f"{p(botdata_db)}reminders", simulated_guild.member)
    description = reply.embeds[0].description or ""
    assert limits.length(description) <= limits.EMBED_DESCRIPTION
    lines = description.splitlines()
    assert lines[-1] == f"{limits.ELLIPSIS} and {61 - len(lines)} more"
    assert all(line.startswith("**#") for line in lines[:-1])  # whole lines only


async def test_cancel_only_your_own(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await say(f"{p(botdata_db)}remind 1h mine", simulated_guild.member)
    await say(f"{p(botdata_db)}remind 1h theirs", simulated_guild.other)
    [mine] = await botdata_db.reminders.pending(simulated_guild.guild.id, simulated_guild.member.id)
    [theirs] = await botdata_db.reminders.pending(
        simulated_guild.guild.id, simulated_guild.other.id
    )
    [reply] = await say(f"{p(botdata_db)}reminder cancel {theirs.id}", simulated_guild.member)
    assert reply.content == "members may cancel only their own reminders"
    assert await pending(botdata_db, simulated_guild, simulated_guild.other) == ["theirs"]
    [reply] = await say(f"{p(botdata_db)}reminder cancel {theirs.id + 100}", simulated_guild.member)
    assert "no pending reminder" in reply.content
    [reply] = await say(f"{p(botdata_db)}reminder cancel soon", simulated_guild.member)
    assert "Usage" in reply.content
    assert await pending(botdata_db, simulated_guild, simulated_guild.member) == ["mine"]
    [reply] = await say(f"{p(botdata_db)}reminders cancel {mine.id}", simulated_guild.member)
    assert reply.content == f"Reminder #{mine.id} cancelled."
    assert await pending(botdata_db, simulated_guild, simulated_guild.member) == []


# Delivery ---------------------------------------------------------------------------------------


async def test_a_due_reminder_is_posted_in_its_channel_pinging_only_its_member(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, sent: list[dict[str, Any]]
) -> None:
    await say(
        f"{p(botdata_db)}remind 1s check the oven @everyone <@{simulated_guild.other.id}>",
        simulated_guild.member,
    )
    sent.clear()
    message = await posted()
    assert message.channel.id == simulated_guild.channel.id
    assert message.content == (
        f"<@{simulated_guild.member.id}> reminder: check the oven @everyone"
        f" <@{simulated_guild.other.id}>"
    )
    [payload] = sent
    assert payload["allowed_mentions"] == {"parse": [], "users": [simulated_guild.member.id]}
    await wait_sent(botdata_db, simulated_guild, simulated_guild.member)


async def test_a_reminder_message_carries_its_id_as_an_enforced_nonce(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, sent: list[dict[str, Any]]
) -> None:
    # Discord drops a second message with the same nonce: a reminder delivered again after a
    # crashed process's claim ran out is not posted twice.
    due = datetime.now(timezone.utc) + timedelta(seconds=0.2)
    reminder = await botdata_db.reminders.create(
        simulated_guild.guild.id, simulated_guild.member.id, simulated_guild.channel.id, "once", due
    )
    message = await posted()
    assert message.content == f"<@{simulated_guild.member.id}> reminder: once"
    [payload] = sent
    assert (payload["nonce"], payload["enforce_nonce"]) == (str(reminder.id), True)
    await wait_sent(botdata_db, simulated_guild, simulated_guild.member)


async def test_a_reminder_whose_channel_is_gone_is_dmed(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, dmed: list[int]
) -> None:
    channel = backend.make_text_channel("temporary", simulated_guild.guild)
    [reply] = await say(
        f"{p(botdata_db)}remind 1s water the plants", simulated_guild.member, channel
    )
    assert reply.channel.id == channel.id
    [reminder] = await botdata_db.reminders.pending(
        simulated_guild.guild.id, simulated_guild.member.id
    )
    backend.delete_channel(channel)
    message = await posted()
    assert isinstance(message.channel, discord.DMChannel)
    assert dmed == [simulated_guild.member.id]
    assert message.content == f"Reminder (set in {simulated_guild.guild.name}): water the plants"
    assert message.nonce == str(reminder.id)  # the DM too: Discord drops a repeat
    await wait_sent(botdata_db, simulated_guild, simulated_guild.member)


async def test_a_reminder_due_while_the_cog_was_unloaded_is_delivered_on_load(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await simulated_guild.bot.unload_extension("botdata_cogs.reminders")
    assert not botdata_db.reminders.running
    due = datetime.now(timezone.utc) + timedelta(seconds=0.2)
    await botdata_db.reminders.create(
        simulated_guild.guild.id,
        simulated_guild.member.id,
        simulated_guild.channel.id,
        "missed",
        due,
    )
    await asyncio.sleep(0.4)
    assert dpytest.sent_queue.empty()
    assert await pending(botdata_db, simulated_guild, simulated_guild.member) == ["missed"]
    await simulated_guild.bot.load_extension("botdata_cogs.reminders")
    assert botdata_db.reminders.running
    message = await posted()
    assert message.content == f"<@{simulated_guild.member.id}> reminder: missed"
    await wait_sent(botdata_db, simulated_guild, simulated_guild.member)


async def test_a_long_reminder_goes_in_an_embed(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    text = "x" * 2000
    await say(f"{p(botdata_db)}remind 1s {text}", simulated_guild.member)
    message = await posted()
    assert message.content == f"<@{simulated_guild.member.id}> reminder:"
    assert message.embeds[0].description == text
    await wait_sent(botdata_db, simulated_guild, simulated_guild.member)


async def test_a_failed_delivery_is_retried_later(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def send_message(*_: Any, **__: Any) -> None:
        raise discord.HTTPException(backend.FakeRequest(503, "Service Unavailable"), "down")

    monkeypatch.setattr(simulated_guild.bot.http, "send_message", send_message)
    due = datetime.now(timezone.utc) + timedelta(seconds=0.2)
    reminder = await botdata_db.reminders.create(
        simulated_guild.guild.id,
        simulated_guild.member.id,
        simulated_guild.channel.id,
        "retry me",
        due,
    )

    async def failed_once() -> bool:
        [current] = await botdata_db.reminders.pending(
            simulated_guild.guild.id, simulated_guild.member.id
        )
        return current.attempts > 0

    await until(failed_once)
    [after] = await botdata_db.reminders.pending(
        simulated_guild.guild.id, simulated_guild.member.id
    )
    assert (after.id, after.sent_at, after.attempts) == (reminder.id, None, 1)


async def test_deliver_gives_up_when_nothing_can_take_the_reminder(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    cog: Any = simulated_guild.bot.get_cog("Reminders")  # its class may be from a reloaded module
    assert cog is not None
    due = datetime.now(timezone.utc) + timedelta(hours=1)
    channel = backend.make_text_channel("temporary", simulated_guild.guild)
    reminder = await botdata_db.reminders.create(
        simulated_guild.guild.id, simulated_guild.member.id, channel.id, "nowhere", due
    )
    backend.delete_channel(channel)

    async def closed_dms(user_id: int) -> None:
        raise discord.Forbidden(backend.FakeRequest(403, "Forbidden"), "Cannot send messages")

    monkeypatch.setattr(simulated_guild.bot.http, "start_private_message", closed_dms)
    await cog.deliver(reminder)  # returns: the dispatcher marks it sent
    assert dpytest.sent_queue.empty()

    async def outage(*_: Any, **__: Any) -> None:
        raise discord.HTTPException(backend.FakeRequest(503, "Service Unavailable"), "down")

    monkeypatch.setattr(simulated_guild.bot.http, "send_message", outage)
    in_channel = reminder.model_copy(update={"channel_id": simulated_guild.channel.id})
    with pytest.raises(discord.HTTPException):
        await cog.deliver(in_channel)
    last_try = in_channel.model_copy(update={"attempts": MAX_ATTEMPTS - 1})
    await cog.deliver(last_try)  # the last try: logged and dropped


async def test_slash_remind(simulated_guild: SimulatedGuild, botdata_db: botdata.Database) -> None:
    [sent] = await slash(
        simulated_guild.bot, simulated_guild.member, "remind", when="1h", what="from slash"
    )
    [reminder] = await botdata_db.reminders.pending(
        simulated_guild.guild.id, simulated_guild.member.id
    )
    assert sent.content is not None
    assert sent.content.startswith(f"Reminder #{reminder.id} set for")
    assert reminder.content == "from slash"
    [sent] = await slash(
        simulated_guild.bot, simulated_guild.member, "remind", when="10x", what="bad"
    )
    assert sent.content is not None
    assert "not a duration" in sent.content
    assert await pending(botdata_db, simulated_guild, simulated_guild.member) == ["from slash"]
    await dpytest.empty_queue()


class Inbox(discord.abc.Messageable):
    """A channel of the second bot (outside dpytest's guild): records what is sent to it."""

    def __init__(self) -> None:
        self.sent: list[str | None] = []
        self.arrived = asyncio.Event()

    async def _get_channel(self) -> Inbox:
        return self

    async def send(self, content: str | None = None, **_: Any) -> None:  # type: ignore[override]
        self.sent.append(content)
        self.arrived.set()


async def test_two_bots_share_one_handle_and_each_delivers_its_guilds(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    """A second bot in the process loads every cog on the same handle and delivers reminders.

    dpytest keeps one global simulated client, so the second bot is a plain ``commands.Bot``
    that never connects: it sees one guild of its own (``get_guild`` answers for
    ``OTHER_GUILD``) and its channels are an :class:`Inbox`. The first bot is dpytest's.
    """
    other_guild = simulated_guild.guild.id + 1
    inbox = Inbox()
    second = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    second.botdata = botdata_db  # type: ignore[attr-defined]
    second.get_guild = lambda guild_id: simulated_guild.guild if guild_id == other_guild else None  # type: ignore[method-assign]
    second.get_channel = lambda channel_id: inbox  # type: ignore[method-assign,assignment,return-value]
    await second._async_setup_hook()
    second._ready.set()  # type: ignore[attr-defined]
    await second.load_extension("botdata_cogs")  # it failed at the reminders cog, leaving no cog
    try:
        assert set(second.cogs) == set(simulated_guild.bot.cogs)
        due = datetime.now(timezone.utc) + timedelta(seconds=0.2)
        await botdata_db.reminders.create(
            simulated_guild.guild.id,
            simulated_guild.member.id,
            simulated_guild.channel.id,
            "one",
            due,
        )
        await botdata_db.reminders.create(
            other_guild, simulated_guild.member.id, simulated_guild.channel.id, "two", due
        )
        message = await posted()
        assert message.content == f"<@{simulated_guild.member.id}> reminder: one"
        await asyncio.wait_for(inbox.arrived.wait(), 5)
        assert inbox.sent == [f"<@{simulated_guild.member.id}> reminder: two"]

        # The first bot's cog goes: the dispatcher keeps running, the second bot takes over.
        await simulated_guild.bot.unload_extension("botdata_cogs.reminders")
        assert botdata_db.reminders.running
        inbox.arrived.clear()
        due = datetime.now(timezone.utc) + timedelta(seconds=0.2)
        await botdata_db.reminders.create(
            simulated_guild.guild.id,
            simulated_guild.other.id,
            simulated_guild.channel.id,
            "three",
            due,
        )
        await asyncio.wait_for(inbox.arrived.wait(), 5)
        assert inbox.sent[-1] == f"<@{simulated_guild.other.id}> reminder: three"
        assert dpytest.sent_queue.empty()
        await simulated_guild.bot.load_extension("botdata_cogs.reminders")
    finally:
        await second.unload_extension("botdata_cogs")
    assert botdata_db.reminders.running  # the first bot's cog still delivers
    assert not botdata_db.closed
