"""What the moderation, cases and notes cogs share: case embeds, the mod log, DMs and
arguments (paged lists are :mod:`botdata_cogs.paging`).

Everything here fits Discord's limits whatever members wrote: a case embed shows a reason and a
void reason of 2000 characters each in full (each part gets at least half of the description
when both are long) and is fitted by :func:`botdata_cogs.limits.fit_embed`; a DM is cut with an
ellipsis at 2000 characters.

Not an extension: a helper module the cogs import.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord
from discord.ext import commands

import botdata
from botdata.managers.case_rules import MAX_REASON
from botdata.models import CaseType
from botdata.schemas import CaseSchema

from . import limits
from .core import NO_MENTIONS

log = logging.getLogger(__name__)

#: Embed colour of each built-in case type; custom types use the default.
COLOURS: dict[CaseType, discord.Colour] = {
    CaseType.BAN: discord.Colour.red(),
    CaseType.HACKBAN: discord.Colour.dark_red(),
    CaseType.TEMPBAN: discord.Colour.red(),
    CaseType.KICK: discord.Colour.orange(),
    CaseType.TIMEOUT: discord.Colour.gold(),
    CaseType.JAIL: discord.Colour.dark_orange(),
    CaseType.WARN: discord.Colour.yellow(),
    CaseType.SNIPPETBAN: discord.Colour.blurple(),
    CaseType.POLLBAN: discord.Colour.blurple(),
    CaseType.UNBAN: discord.Colour.green(),
    CaseType.UNTIMEOUT: discord.Colour.green(),
    CaseType.UNJAIL: discord.Colour.green(),
    CaseType.SNIPPETUNBAN: discord.Colour.green(),
    CaseType.POLLUNBAN: discord.Colour.green(),
}
#: How many saved roles a case embed lists.
SHOWN_ROLES = 40
#: Case and note numbers are 32-bit.
MAX_NUMBER = 2**31 - 1

#: Command argument: a case or note number.
Number = commands.Range[int, 1, MAX_NUMBER]
#: Command argument: a case's reason (the rest of the message).
Reason = commands.Range[str, 1, MAX_REASON]


async def type_labels(
    db: botdata.Database, guild_id: int, cases: Sequence[CaseSchema]
) -> list[str]:
    """The type name of each case: the built-in name or the custom type's display name."""
    custom: dict[int, str] = {}
    if any(case.type is None for case in cases):
        custom = {t.id: t.display_name for t in await db.case_types.list(guild_id)}
    return [
        case.type.value if case.type else custom.get(case.custom_type_id or 0, "Custom")
        for case in cases
    ]


async def case_embed(db: botdata.Database, case: CaseSchema) -> discord.Embed:
    """An embed showing every part of ``case`` (its void too), within Discord's limits."""
    [label] = await type_labels(db, case.guild_id, [case])
    description = f"**Reason:** {case.reason}"
    if case.voided_at is not None:
        when = discord.utils.format_dt(case.voided_at, "R")
        void = f"**Voided** by <@{case.voided_by}> {when}: {case.void_reason}"
        room = limits.EMBED_DESCRIPTION - 2  # the blank line between the parts
        description = limits.fit(description, room - min(limits.length(void), room // 2))
        description += "\n\n" + limits.fit(void, room - limits.length(description))
    embed = discord.Embed(
        title=f"Case #{case.number} · {label}" + (" (void)" if not case.active else ""),
        description=description,
        colour=COLOURS.get(case.type) if case.type else None,
        timestamp=case.created_at,
    )
    embed.add_field(name="Member", value=f"<@{case.user_id}> (`{case.user_id}`)")
    embed.add_field(name="Moderator", value=f"<@{case.moderator_id}>")
    if case.expires_at is not None:
        embed.add_field(name="Expires", value=discord.utils.format_dt(case.expires_at, "R"))
    if case.user_roles:
        shown = " ".join(f"<@&{role}>" for role in case.user_roles[:SHOWN_ROLES])
        more = len(case.user_roles) - SHOWN_ROLES
        shown += f" and {more} more" if more > 0 else ""
        embed.add_field(name="Saved roles", value=shown, inline=False)
    return limits.fit_embed(embed)


async def post_mod_log(
    db: botdata.Database, guild: discord.Guild, case: CaseSchema
) -> discord.Message | None:
    """Post the case's embed in the guild's mod-log channel.

    Returns the message, or None when no mod log is set, its channel is gone or the bot may not
    post there (logged: the command itself succeeded).
    """
    channel_id = (await db.guilds.config(guild.id)).mod_log_id
    if channel_id is None:
        return None
    channel = guild.get_channel_or_thread(channel_id)
    if not isinstance(channel, discord.abc.Messageable):
        log.warning("guild %s: mod-log channel %s is missing", guild.id, channel_id)
        return None
    try:
        return await channel.send(embed=await case_embed(db, case), allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        log.warning("guild %s: cannot post in mod-log channel %s: %s", guild.id, channel_id, exc)
        return None


async def notify(user: discord.User | discord.Member, text: str) -> discord.Message | None:
    """DM ``user`` (pinging nobody) ``text``, cut with an ellipsis to Discord's 2000 characters.

    Returns the message, or None when their DMs are closed.
    """
    try:
        return await user.send(limits.fit(text, limits.CONTENT), allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        return None


def name_of(user: discord.abc.User) -> str:
    """The user's name for a reply, markdown escaped (no ping)."""
    return discord.utils.escape_markdown(str(user))
