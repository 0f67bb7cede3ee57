"""The cases and notes cogs through dpytest, as a moderator would type them (both backends).

Cases are made with ``db.cases.create`` (the moderation commands have their own tests); the
commands under test are typed as messages.
"""

from __future__ import annotations

from datetime import timedelta

import discord
import discord.ext.test as dpytest

import botdata
from botdata.models import CaseType
from botdata.schemas import CaseSchema
from botdata_cogs import limits
from botdata_cogs.testing import SimulatedGuild, say, slash


def prefix(db: botdata.Database) -> str:
    return db.settings.DEFAULT_PREFIX


async def warn(db: botdata.Database, scene: SimulatedGuild, reason: str = "spam") -> CaseSchema:
    return await db.cases.create(
        scene.guild.id, scene.member.id, scene.mod.id, CaseType.WARN, reason
    )


def lines(message: discord.Message) -> list[str]:
    return (message.embeds[0].description or "").splitlines()


# case <n> ---------------------------------------------------------------------------------------


async def test_case_shows_the_case_as_an_embed(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await warn(botdata_db, simulated_guild, "first")
    await botdata_db.cases.create(
        simulated_guild.guild.id,
        simulated_guild.other.id,
        simulated_guild.mod.id,
        CaseType.TEMPBAN,
        "raiding",
        duration=timedelta(days=1),
    )
    [reply] = await say(f"{prefix(botdata_db)}case 2", simulated_guild.mod)
    embed = reply.embeds[0]
    assert embed.title == "Case #2 · TEMPBAN"
    assert embed.description == "**Reason:** raiding"
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Member"] == f"<@{simulated_guild.other.id}> (`{simulated_guild.other.id}`)"
    assert fields["Moderator"] == f"<@{simulated_guild.mod.id}>"
    assert fields["Expires"].startswith("<t:")
    [reply] = await say(f"{prefix(botdata_db)}case 3", simulated_guild.mod)
    assert reply.content == "There is no case #3."


async def test_a_custom_case_type_shows_its_display_name(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await botdata_db.case_types.create(
        simulated_guild.guild.id,
        "spoiler",
        display_name="Spoiler warning",
        created_by=simulated_guild.mod.id,
    )
    await botdata_db.cases.create(
        simulated_guild.guild.id,
        simulated_guild.member.id,
        simulated_guild.mod.id,
        "spoiler",
        "ending",
    )
    [reply] = await say(f"{prefix(botdata_db)}case 1", simulated_guild.mod)
    assert reply.embeds[0].title == "Case #1 · Spoiler warning"


# cases @member [page] ---------------------------------------------------------------------------


async def test_cases_lists_a_members_cases_newest_first_by_page(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    for n in range(1, 13):
        await warn(botdata_db, simulated_guild, f"reason {n}")
    await botdata_db.cases.create(
        simulated_guild.guild.id,
        simulated_guild.other.id,
        simulated_guild.mod.id,
        CaseType.KICK,
        "other",
    )
    await botdata_db.cases.void(
        simulated_guild.guild.id, 12, by=simulated_guild.mod.id, reason="mistake"
    )
    [reply] = await say(f"{p}cases {simulated_guild.member.mention}", simulated_guild.mod)
    embed = reply.embeds[0]
    assert embed.title == f"Cases of {simulated_guild.member}"
    first = lines(reply)
    assert len(first) == 10
    assert first[0].startswith("~~**#12** WARN")
    assert first[0].endswith("(void)")
    assert first[1].startswith("**#11** WARN")
    assert first[1].endswith("reason 11")
    assert embed.footer.text == f"Page 1 · next: {p}cases {simulated_guild.member.id} 2"
    [reply] = await say(f"{p}cases {simulated_guild.member.mention} 2", simulated_guild.mod)
    assert [line.split()[0] for line in lines(reply)] == ["**#2**", "**#1**"]
    assert reply.embeds[0].footer.text == "Page 2"
    [reply] = await say(f"{p}cases {simulated_guild.member.mention} 3", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.member} has no cases on page 3."
    [reply] = await say(f"{p}cases {simulated_guild.mod.id}", simulated_guild.mod)
    assert reply.content == f"{simulated_guild.mod} has no cases."


async def test_long_reasons_are_shortened_in_the_list(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await warn(botdata_db, simulated_guild, "word " * 100)
    [reply] = await say(
        f"{prefix(botdata_db)}cases {simulated_guild.member.mention}", simulated_guild.mod
    )
    [line] = lines(reply)
    assert line.endswith("…")
    assert len(line) < 150


# case edit / case void --------------------------------------------------------------------------


async def test_case_edit_changes_the_reason_and_keeps_the_history(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await warn(botdata_db, simulated_guild, "old reason")
    [reply] = await say(f"{prefix(botdata_db)}case edit 1 the real reason", simulated_guild.mod)
    assert reply.content == "Case #1's reason was changed."
    assert reply.embeds[0].description == "**Reason:** the real reason"
    assert (await botdata_db.cases.get(simulated_guild.guild.id, 1)).reason == "the real reason"
    [edit] = await botdata_db.cases.history(simulated_guild.guild.id, 1)
    assert (edit.old_reason, edit.new_reason, edit.editor_id) == (
        "old reason",
        "the real reason",
        simulated_guild.mod.id,
    )
    [reply] = await say(f"{prefix(botdata_db)}case edit 2 nothing there", simulated_guild.mod)
    assert reply.content == "There is no case #2."


async def test_case_void_marks_the_case_void_once(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await warn(botdata_db, simulated_guild)
    [reply] = await say(f"{p}case void 1 wrong member", simulated_guild.mod)
    assert reply.content == "Case #1 is void."
    case = await botdata_db.cases.get(simulated_guild.guild.id, 1)
    assert (case.active, case.voided_by, case.void_reason) == (
        False,
        simulated_guild.mod.id,
        "wrong member",
    )
    [reply] = await say(f"{p}case void 1 again", simulated_guild.mod)
    assert reply.content == "Case #1 is already void."
    [reply] = await say(f"{p}case 1", simulated_guild.mod)
    assert reply.embeds[0].title == "Case #1 · WARN (void)"
    assert "**Voided** by" in (reply.embeds[0].description or "")
    [reply] = await say(f"{p}case void 9 nothing", simulated_guild.mod)
    assert reply.content == "There is no case #9."


async def test_a_case_with_a_long_reason_and_void_reason_shows_both(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await warn(botdata_db, simulated_guild, "r" * 2000)
    await botdata_db.cases.void(
        simulated_guild.guild.id, 1, by=simulated_guild.mod.id, reason="v" * 2000
    )
    [reply] = await say(f"{p}case 1", simulated_guild.mod)  # ASCII: both fit whole
    description = reply.embeds[0].description or ""
    assert "r" * 2000 in description
    assert "v" * 2000 in description
    smile = "\U0001f600"  # two UTF-16 units: 2000 of them are 4000 characters to Discord
    await warn(botdata_db, simulated_guild, smile * 2000)
    await botdata_db.cases.void(
        simulated_guild.guild.id, 2, by=simulated_guild.mod.id, reason=smile * 2000
    )
    [reply] = await say(f"{p}case 2", simulated_guild.mod)
    [embed] = reply.embeds
    description = embed.description or ""
    assert limits.length(description) <= limits.EMBED_DESCRIPTION
    assert len(embed) <= limits.EMBED_TOTAL
    reason, void = description.split("\n\n")
    assert reason.startswith(f"**Reason:** {smile * 100}")
    assert void.startswith("**Voided** by")
    assert void.endswith(f"{smile * 100}{limits.ELLIPSIS}")
    assert limits.length(reason) >= limits.EMBED_DESCRIPTION // 2 - 1  # each gets half


async def test_bad_case_input_gets_a_clear_reply_and_changes_nothing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await warn(botdata_db, simulated_guild, "kept")
    [reply] = await say(f"{p}case edit 1 {'x' * 2001}", simulated_guild.mod)
    assert "2000" in reply.content
    [reply] = await say(f"{p}case void 1", simulated_guild.mod)
    assert reply.content.startswith("Missing `reason`")
    [reply] = await say(f"{p}case one", simulated_guild.mod)
    assert "Usage" in reply.content
    [reply] = await say(f"{p}case 0", simulated_guild.mod)
    assert "Usage" in reply.content
    [reply] = await say(f"{p}cases {simulated_guild.member.mention} 0", simulated_guild.mod)
    assert "Usage" in reply.content
    case = await botdata_db.cases.get(simulated_guild.guild.id, 1)
    assert (case.reason, case.active) == ("kept", True)
    assert await botdata_db.cases.history(simulated_guild.guild.id, 1) == []


async def test_a_non_moderator_cannot_see_or_change_cases(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await warn(botdata_db, simulated_guild, "kept")
    for command in (
        "case 1",
        f"cases {simulated_guild.member.mention}",
        "case edit 1 x",
        "case void 1 x",
    ):
        [reply] = await say(f"{p}{command}", simulated_guild.member)
        assert "permission level 2" in reply.content
        assert not reply.embeds
    case = await botdata_db.cases.get(simulated_guild.guild.id, 1)
    assert (case.reason, case.active) == ("kept", True)


async def test_slash_case_show(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    await warn(botdata_db, simulated_guild, "by slash")
    [sent] = await slash(simulated_guild.bot, simulated_guild.mod, "case show", number=1)
    assert sent.embed is not None
    assert sent.embed.title == "Case #1 · WARN"
    [sent] = await slash(
        simulated_guild.bot, simulated_guild.mod, "case void", number=1, reason="slash void"
    )
    assert sent.content == "Case #1 is void."
    assert (await botdata_db.cases.get(simulated_guild.guild.id, 1)).void_reason == "slash void"
    await dpytest.empty_queue()


# Notes ------------------------------------------------------------------------------------------


async def test_note_add_list_and_delete(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(
        f"{p}note {simulated_guild.member.mention} seems to be an alt", simulated_guild.mod
    )
    assert reply.content == f"Note #1 about {simulated_guild.member} saved."
    await say(f"{p}note {simulated_guild.member.id} asked about **rules**", simulated_guild.mod)
    [note] = await botdata_db.notes.for_user(
        simulated_guild.guild.id, simulated_guild.member.id, limit=1, before=2
    )
    assert (note.content, note.moderator_id) == ("seems to be an alt", simulated_guild.mod.id)
    [reply] = await say(f"{p}notes {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.embeds[0].title == f"Notes about {simulated_guild.member}"
    newest, oldest = lines(reply)
    assert newest.startswith(f"**#2** <@{simulated_guild.mod.id}>")
    assert newest.endswith(r"asked about \*\*rules\*\*")
    assert oldest.endswith("seems to be an alt")
    [reply] = await say(f"{p}note delete 1", simulated_guild.mod)
    assert reply.content == "Note #1 deleted."
    assert [
        n.number
        for n in await botdata_db.notes.for_user(
            simulated_guild.guild.id, simulated_guild.member.id
        )
    ] == [2]
    [reply] = await say(f"{p}note delete 1", simulated_guild.mod)
    assert reply.content == "There is no note #1."
    [reply] = await say(f"{p}notes {simulated_guild.other.mention}", simulated_guild.mod)
    assert reply.content == f"There are no notes about {simulated_guild.other}."


async def test_notes_are_paged(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    for n in range(1, 12):
        await botdata_db.notes.add(
            simulated_guild.guild.id, simulated_guild.member.id, simulated_guild.mod.id, f"note {n}"
        )
    [reply] = await say(
        f"{prefix(botdata_db)}notes {simulated_guild.member.mention}", simulated_guild.mod
    )
    assert len(lines(reply)) == 10
    assert "next:" in (reply.embeds[0].footer.text or "")
    [reply] = await say(
        f"{prefix(botdata_db)}notes {simulated_guild.member.mention} 2", simulated_guild.mod
    )
    [only] = lines(reply)
    assert only.startswith("**#1**")


async def test_bad_note_input_is_refused_and_nothing_written(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    [reply] = await say(f"{p}note {simulated_guild.member.mention}", simulated_guild.mod)
    assert reply.content.startswith("Missing `text`")
    [reply] = await say(
        f"{p}note {simulated_guild.member.mention} {'x' * 2001}", simulated_guild.mod
    )
    assert "2000" in reply.content
    [reply] = await say(f"{p}note delete first", simulated_guild.mod)
    assert "Usage" in reply.content
    assert (
        await botdata_db.notes.for_user(simulated_guild.guild.id, simulated_guild.member.id) == []
    )


async def test_a_non_moderator_cannot_use_notes(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = prefix(botdata_db)
    await botdata_db.notes.add(
        simulated_guild.guild.id, simulated_guild.other.id, simulated_guild.mod.id, "kept"
    )
    other = simulated_guild.other.mention
    for command in (f"note {other} hi", f"notes {other}", "note delete 1"):
        [reply] = await say(f"{p}{command}", simulated_guild.member)
        assert "permission level 2" in reply.content
    [note] = await botdata_db.notes.for_user(simulated_guild.guild.id, simulated_guild.other.id)
    assert note.content == "kept"


async def test_slash_note_add(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    [sent] = await slash(
        simulated_guild.bot,
        simulated_guild.mod,
        "note add",
        user=simulated_guild.member,
        text="from slash",
    )
    assert sent.content == f"Note #1 about {simulated_guild.member} saved."
    [note] = await botdata_db.notes.for_user(simulated_guild.guild.id, simulated_guild.member.id)
    assert note.content == "from slash"
    await dpytest.empty_queue()
