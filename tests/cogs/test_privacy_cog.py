"""The privacy cog: export by DM, erasure after a confirmation (typed or by button)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend

import botdata
from botdata.models import CaseType
from botdata.schemas import ErasureSummary
from botdata_cogs.privacy import (
    CLOSED_DMS,
    ERASE_WARNING,
    EXPORT_SCOPE,
    EraseConfirmation,
    Privacy,
    describe,
)
from botdata_cogs.testing import SimulatedGuild, say, slash


@pytest.fixture(autouse=True)
def _files_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # dpytest writes every file the bot sends to ./dpytest_<n>.dat
    monkeypatch.chdir(tmp_path)


@dataclass
class Rows:
    """The member's data made through the managers."""

    case_number: int
    note_number: int
    copy: discord.Message  # the member's message's copy on the starboard
    original: discord.Message


async def populate(scene: SimulatedGuild, db: botdata.Database) -> Rows:
    """A case, a note, a level row and a starred message with its starboard copy, for
    ``scene.member``."""
    guild, member = scene.guild.id, scene.member.id
    case = await db.cases.create(guild, member, scene.mod.id, CaseType.WARN, "spam")
    note = await db.notes.add(guild, member, scene.mod.id, "keeps spamming the mods")
    board = backend.make_text_channel("starboard", scene.guild)
    await db.starboard.configure(guild, channel_id=board.id, threshold=1)
    original = await dpytest.message("star me", member=scene.member)
    await db.levels.set_xp(guild, member, 150)  # after the message (the levels cog grants XP)
    await db.starboard.add_star(
        guild,
        message_id=original.id,
        channel_id=original.channel.id,
        author_id=member,
        user_id=scene.other.id,
    )
    copy = await board.send("the copy")
    await db.starboard.set_copy(guild, original.id, copy.id)
    await dpytest.empty_queue()
    return Rows(case.number, note.number, copy, original)


async def assert_untouched(scene: SimulatedGuild, db: botdata.Database, rows: Rows) -> None:
    guild, member = scene.guild.id, scene.member.id
    assert (await db.levels.get(guild, member)) is not None
    entry = await db.starboard.get_message(guild, rows.original.id)
    assert entry is not None
    assert entry.starboard_message_id == rows.copy.id
    assert await rows.copy.channel.fetch_message(rows.copy.id) is not None


async def assert_erased(scene: SimulatedGuild, db: botdata.Database, rows: Rows) -> None:
    """Own data gone, moderation records kept, the starboard copy deleted from Discord."""
    guild, member = scene.guild.id, scene.member.id
    assert await db.levels.get(guild, member) is None
    assert await db.starboard.get_message(guild, rows.original.id) is None
    assert (await db.cases.get(guild, rows.case_number)).user_id == member
    assert (await db.notes.get(guild, rows.note_number)).user_id == member
    with pytest.raises(discord.NotFound):
        await rows.copy.channel.fetch_message(rows.copy.id)


def attachment_json(message: discord.Message) -> dict[str, Any]:
    [attachment] = message.attachments
    assert attachment.filename.endswith(".json")
    return json.loads(Path(unquote(urlparse(attachment.url).path)).read_text())  # type: ignore[no-any-return]


def split(sent: list[discord.Message]) -> tuple[list[discord.Message], list[discord.Message]]:
    """(DMs, messages in server channels)."""
    dms = [m for m in sent if isinstance(m.channel, discord.DMChannel)]
    return dms, [m for m in sent if m not in dms]


async def test_mydata_says_what_it_does(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}mydata", simulated_guild.member)
    assert f"`{p}mydata export`" in reply.content
    assert f"`{p}mydata erase`" in reply.content


async def test_export_is_a_json_file_by_dm_and_nothing_public(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    rows = await populate(simulated_guild, botdata_db)
    dms, public = split(
        await say(f"{botdata_db.settings.DEFAULT_PREFIX}mydata export", simulated_guild.member)
    )
    [reply] = public
    assert reply.content == "I sent you your data by DM."
    assert reply.attachments == []
    assert "spamming" not in reply.content
    [dm] = dms
    assert simulated_guild.member.dm_channel is not None
    assert dm.channel.id == simulated_guild.member.dm_channel.id
    data = attachment_json(dm)
    assert data["user_id"] == simulated_guild.member.id
    tables = data["tables"]
    assert [row["number"] for row in tables["cases"]] == [rows.case_number]
    assert [row["content"] for row in tables["notes"]] == ["keeps spamming the mods"]
    assert [row["xp"] for row in tables["levels"]] == [150]
    assert [row["message_id"] for row in tables["starboard_messages"]] == [rows.original.id]


async def test_a_moderators_export_holds_no_other_members_reason_or_note(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    # Issue #9 point 7: it handed out the reasons and notes of the members they moderated.
    guild, member, mod = simulated_guild.guild.id, simulated_guild.member.id, simulated_guild.mod.id
    case = await botdata_db.cases.create(guild, member, mod, CaseType.WARN, "a private reason")
    note = await botdata_db.notes.add(guild, member, mod, "a private remark")
    dms, _ = split(
        await say(f"{botdata_db.settings.DEFAULT_PREFIX}mydata export", simulated_guild.mod)
    )
    [dm] = dms
    data = attachment_json(dm)
    text = json.dumps(data)
    for private in ("a private reason", "a private remark", str(member)):
        assert private not in text, private
    assert data["tables"]["cases"] == data["tables"]["notes"] == []
    actions = {(a["table"], a["guild_id"], a["number"]) for a in data["actions"]}
    assert actions == {("cases", guild, case.number), ("notes", guild, note.number)}
    assert all("moderator_id" in action["roles"] for action in data["actions"])


async def test_erasing_while_afk_gives_the_nickname_back(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    # Issue #9 point 14: the "[AFK] " nickname stayed for good.
    simulated_guild.member.nick = "Sam"
    simulated_guild.other.nick = "Alex"
    p = botdata_db.settings.DEFAULT_PREFIX
    await say(f"{p}afk lunch", simulated_guild.member)
    await say(f"{p}afk away", simulated_guild.other)
    assert (simulated_guild.member.nick, simulated_guild.other.nick) == ("[AFK] Sam", "[AFK] Alex")
    simulated_guild.other.nick = "Alex again"  # changed it meanwhile: left alone
    await say(f"{p}mydata erase confirm", simulated_guild.member)
    await say(f"{p}mydata erase confirm", simulated_guild.other)
    assert (simulated_guild.member.nick, simulated_guild.other.nick) == ("Sam", "Alex again")
    assert await botdata_db.afk.get(simulated_guild.guild.id, simulated_guild.member.id) is None


async def test_export_with_closed_dms_asks_to_open_them(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.member.id, 10)

    async def closed(user_id: int) -> None:
        raise discord.Forbidden(backend.FakeRequest(403, "Forbidden"), "Cannot send messages")

    monkeypatch.setattr(simulated_guild.bot.http, "start_private_message", closed)
    [reply] = await say(
        f"{botdata_db.settings.DEFAULT_PREFIX}mydata export", simulated_guild.member
    )
    assert reply.content == CLOSED_DMS
    assert reply.attachments == []


async def test_export_in_dms(simulated_guild: SimulatedGuild, botdata_db: botdata.Database) -> None:
    await botdata_db.levels.set_xp(simulated_guild.guild.id, simulated_guild.member.id, 10)
    dm = await simulated_guild.member.create_dm()
    [reply] = await say(
        f"{botdata_db.settings.DEFAULT_PREFIX}mydata export", simulated_guild.member, dm
    )
    assert reply.channel.id == dm.id
    assert [row["xp"] for row in attachment_json(reply)["tables"]["levels"]] == [10]


async def test_export_is_rate_limited(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    for _ in range(botdata_db.settings.COMMAND_RATE_LIMIT):
        await botdata_db.rate_limits.hit(simulated_guild.member.id, scope=EXPORT_SCOPE)
    [reply] = await say(
        f"{botdata_db.settings.DEFAULT_PREFIX}mydata export", simulated_guild.member
    )
    assert reply.content == "You asked for your data too often; wait a minute."
    assert reply.attachments == []


def test_the_summary_says_when_cached_copies_are_still_to_go() -> None:
    # A paused Redis during erase_user is tested in tests/test_cache_erasure.py; here: what the
    # member is told about it.
    queued = ErasureSummary(
        user_id=200_000_000_000_000_001,
        deleted={"levels": 1},
        anonymised={},
        kept={},
        starboard_copies=[],
        afk_statuses=[],
        cache_cleared=False,
    )
    assert "cache did not answer" in describe(queued, 0)
    assert "cache" not in describe(queued.model_copy(update={"cache_cleared": True}), 0)


async def test_erase_confirmed_by_typing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    rows = await populate(simulated_guild, botdata_db)
    p = botdata_db.settings.DEFAULT_PREFIX
    dms, public = split(await say(f"{p}mydata erase confirm", simulated_guild.member))
    [reply] = public
    assert reply.content == "Your data has been erased; I sent you the details by DM."
    [summary] = dms
    assert summary.content.startswith("Your data has been erased.")
    assert "levels 1" in summary.content
    assert "Kept (moderation records): cases 1, notes 1." in summary.content
    assert "Starboard copies removed: 1 of 1." in summary.content
    await assert_erased(simulated_guild, botdata_db, rows)


@dataclass
class Click:
    """A button press by ``user``: records what the view answered."""

    user: discord.abc.User
    calls: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    @property
    def response(self) -> Click:
        return self

    @property
    def followup(self) -> Click:
        return self

    async def _record(self, name: str, content: str | None = None, **kwargs: Any) -> None:
        self.calls.append((name, content, kwargs))

    async def send_message(self, content: str | None = None, **kwargs: Any) -> None:
        await self._record("send_message", content, **kwargs)

    async def edit_message(self, content: str | None = None, **kwargs: Any) -> None:
        await self._record("edit_message", content, **kwargs)

    async def edit_original_response(self, content: str | None = None, **kwargs: Any) -> None:
        await self._record("edit_original_response", content, **kwargs)

    async def send(self, content: str | None = None, **kwargs: Any) -> None:
        await self._record("send", content, **kwargs)


async def press(
    view: EraseConfirmation, button: discord.ui.Button, user: discord.abc.User
) -> Click:
    """Press ``button`` as ``user``: the view's interaction check, then the button's callback."""
    click = Click(user)
    if await view.interaction_check(click):  # type: ignore[arg-type]
        await button.callback(click)  # type: ignore[arg-type]
    return click


async def test_erase_asks_first_and_only_the_member_may_confirm(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    rows = await populate(simulated_guild, botdata_db)
    # An extension's module is loaded afresh: its classes are not those imported here.
    cog: Privacy = simulated_guild.bot.get_cog("Privacy")  # type: ignore[assignment]
    p = botdata_db.settings.DEFAULT_PREFIX
    [question] = await say(f"{p}mydata erase", simulated_guild.member)
    assert question.content == ERASE_WARNING
    view = cog.prompts[simulated_guild.member.id]
    await assert_untouched(simulated_guild, botdata_db, rows)

    refused = await press(view, view.confirm, simulated_guild.other)
    assert refused.calls == [("send_message", "These buttons are not yours.", {"ephemeral": True})]
    await assert_untouched(simulated_guild, botdata_db, rows)

    cancelled = await press(view, view.cancel, simulated_guild.member)
    assert cancelled.calls == [("edit_message", "Nothing was erased.", {"view": None})]
    assert view.is_finished()
    assert simulated_guild.member.id not in cog.prompts
    await assert_untouched(simulated_guild, botdata_db, rows)

    await say(f"{p}mydata erase", simulated_guild.member)
    timed_out = cog.prompts[simulated_guild.member.id]
    timed_out.stop()  # what the view's timer does before calling on_timeout
    await timed_out.on_timeout()
    assert simulated_guild.member.id not in cog.prompts
    assert timed_out.message is not None
    edited = await timed_out.message.channel.fetch_message(timed_out.message.id)
    assert edited.content == "No answer: nothing was erased."
    await assert_untouched(simulated_guild, botdata_db, rows)

    await say(f"{p}mydata erase", simulated_guild.member)
    view = cog.prompts[simulated_guild.member.id]
    confirmed = await press(view, view.confirm, simulated_guild.member)
    names = [name for name, _, _ in confirmed.calls]
    assert names == ["edit_message", "edit_original_response", "send"]
    _, summary, kwargs = confirmed.calls[-1]
    assert kwargs["ephemeral"] is True
    assert summary is not None
    assert "Kept (moderation records): cases 1, notes 1." in summary
    await assert_erased(simulated_guild, botdata_db, rows)


async def test_slash_export(simulated_guild: SimulatedGuild, botdata_db: botdata.Database) -> None:
    await botdata_db.notes.add(
        simulated_guild.guild.id,
        simulated_guild.member.id,
        simulated_guild.mod.id,
        "private remark",
    )
    [reply] = await slash(simulated_guild.bot, simulated_guild.member, "mydata export")
    assert (reply.content, reply.ephemeral) == ("I sent you your data by DM.", True)
    [dm] = await say_nothing()
    assert isinstance(dm.channel, discord.DMChannel)
    assert [row["content"] for row in attachment_json(dm)["tables"]["notes"]] == ["private remark"]


async def say_nothing() -> list[discord.Message]:
    """What the bot sent without being spoken to (the sent queue, drained)."""
    out = []
    while not dpytest.sent_queue.empty():
        out.append(await dpytest.sent_queue.get())
    return out
