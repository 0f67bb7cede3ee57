"""AFK: members say they are away; mentions of them get a notice; talking brings them back.

Commands: ``afk [reason]`` (slash: ``/afk me``) marks you AFK (a reason is at most 500
characters). Level 2 or Manage Nicknames: ``afk set @member [duration] [reason]`` marks a member
AFK *enforced* (talking does not clear it) until the duration ends, or for good (permanent)
without one (a first word that starts with a digit must be a valid duration, see
:class:`botdata_cogs.core.OptionalDuration`); ``afk clear @member`` ends anyone's AFK. A reason
starting with the word ``set`` or ``clear`` is read as those subcommands. A member whose AFK a
moderator enforced cannot replace it.

Nicknames
    While AFK a member is called ``[AFK] <name>`` when the bot can rename them (Manage
    Nicknames, their top role below the bot's, not the owner); a refusal from Discord is not an
    error. The nickname they had is stored with the status and put back when it ends, unless
    they changed it meanwhile (it no longer starts with ``[AFK]``).

Messages
    The listener asks ``db.afk.get_many`` about the author and the members the message mentions,
    in one call answered from the hot cache when none is AFK (the common case: no round trip).
    Only when someone is AFK does it check that the message is not a command
    (``<prefix><word>``: commands and snippets are left alone) and that the guild's access
    rules allow the ``afk`` module for the author in the channel (a module rule that denies or
    ignores it silences the listener too: no welcome-back, no notices). An author who is
    AFK (not enforced) is cleared ("Welcome back"); for each mentioned AFK member the channel
    gets "X is AFK: reason (since ...)" (whole notices up to Discord's 2000 characters, then
    how many were left out), pinging nobody, at most once per
    :data:`NOTICE_COOLDOWN` seconds per channel and member. That cooldown is kept in the
    process (a ``CooldownMapping`` whose idle entries are dropped): a guild's messages all reach
    the same bot process (its shard), so it does not need to be shared.

Expiry
    Every :data:`EXPIRY_INTERVAL` seconds :meth:`AFK.expire` claims the statuses whose time is up
    (``db.afk.claim_expired``: each is handed to one process), puts their nicknames back and
    ends them (``complete_expiry``). A restore that fails (an error other than Discord refusing)
    is released and retried by a later run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Annotated

import discord
from discord.ext import commands

import botdata
from botdata.managers.afk import MAX_CLAIM, MAX_REASON
from botdata.managers.permissions import Outcome
from botdata.schemas import AFKSchema

from . import limits
from .core import (
    NO_MENTIONS,
    BotdataCog,
    GuildContext,
    OptionalDuration,
    clock_loop,
    cog_setup,
    ensure_can_moderate,
    human,
    hybrid_group,
    level_or_permissions,
    starts_with_prefix,
)

log = logging.getLogger(__name__)

MODERATOR_LEVEL = 2
#: What an AFK member's nickname starts with.
TAG = "[AFK] "
#: Discord's longest nickname.
MAX_NICK = 32
#: Seconds between two notices about the same AFK member in the same channel.
NOTICE_COOLDOWN = 60.0
#: Seconds between two runs of the expiry task.
EXPIRY_INTERVAL = 60
#: Characters of a reason shown in a notice (a message mentioning many AFK members stays short).
SHOWN_REASON = 200

Reason = commands.Range[str, 1, MAX_REASON]


class AFK(BotdataCog):
    """Away statuses, mention notices and AFK nicknames."""

    def __init__(self, bot: commands.Bot, db: botdata.Database) -> None:
        super().__init__(bot, db)
        self.notices: commands.CooldownMapping[tuple[int, int]] = (
            commands.CooldownMapping.from_cooldown(1, NOTICE_COOLDOWN, lambda key: key)
        )

    async def cog_load(self) -> None:
        """Start the expiry task."""
        self.expiry_loop = clock_loop(
            self, EXPIRY_INTERVAL, self.expire, "ending expired AFK statuses"
        )

    async def cog_unload(self) -> None:
        """Stop the expiry task."""
        self.expiry_loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.expiry_loop

    # Commands ----------------------------------------------------------------------------------

    @hybrid_group(name="afk", fallback="me")
    @commands.guild_only()
    async def afk(self, ctx: GuildContext, *, reason: Reason = "") -> None:
        """Mark yourself AFK; you are back when you next talk."""
        previous = await self.db.afk.get(ctx.guild.id, ctx.author.id)
        if previous is not None and previous.enforced:
            await self.send(ctx, "A moderator set your AFK; only a moderator can end it.")
            return
        await self._set(ctx.author, previous, reason)
        await self.send(ctx, f"{_name(ctx.author)} is AFK{_because(reason)}", mentions=NO_MENTIONS)

    @afk.command(name="set")
    @level_or_permissions(MODERATOR_LEVEL, manage_nicknames=True)
    async def set_afk(
        self,
        ctx: GuildContext,
        member: discord.Member,
        duration: Annotated[timedelta | None, OptionalDuration] = None,
        *,
        reason: Reason = "",
    ) -> None:
        """Make a member AFK for a duration or for good; talking does not end it."""
        ensure_can_moderate(ctx, member)
        previous = await self.db.afk.get(ctx.guild.id, member.id)
        until = self.db.clock.now() + duration if duration else None
        await self._set(member, previous, reason, enforced=True, until=until)
        time = f" for {human(duration)}" if duration else " until a moderator ends it"
        text = f"{_name(member)} is AFK{time}{_because(reason)}"
        await self.send(ctx, text, mentions=NO_MENTIONS)

    @afk.command(name="clear")
    @level_or_permissions(MODERATOR_LEVEL, manage_nicknames=True)
    async def clear_afk(self, ctx: GuildContext, member: discord.Member) -> None:
        """End a member's AFK, enforced or not."""
        ensure_can_moderate(ctx, member)
        status = await self.db.afk.clear(ctx.guild.id, member.id)
        if status is None:
            await self.send(ctx, f"{_name(member)} is not AFK.")
            return
        await _restore(member, status)
        await self.send(ctx, f"{_name(member)} is no longer AFK.")

    async def _set(
        self,
        member: discord.Member,
        previous: AFKSchema | None,
        reason: str,
        *,
        enforced: bool = False,
        until: datetime | None = None,
    ) -> None:
        """Store the status (enforced without ``until``: permanent), then rename the member.

        A status set over another keeps the nickname to restore from the first one.
        """
        await self.db.afk.set(
            member.guild.id,
            member.id,
            nickname=previous.nickname if previous else member.nick or "",
            reason=reason,
            until=until,
            enforced=enforced,
            permanent=enforced and until is None,
        )
        if _can_rename(member) and not (member.nick or "").startswith(TAG):
            await _rename(member, (TAG + member.display_name)[:MAX_NICK])

    # Messages ----------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Bring an AFK author back and tell the channel about AFK members mentioned."""
        author = message.author
        if author.bot or message.guild is None or not isinstance(author, discord.Member):
            return
        mentioned = {m.id: m for m in message.mentions if not m.bot and m.id != author.id}
        statuses = await self.db.afk.get_many(message.guild.id, {author.id, *mentioned})
        if not statuses:
            return
        if await starts_with_prefix(self.bot, message):
            return  # a command (``afk`` itself), or a snippet's short form
        if await self.outcome(author, message.channel) is not Outcome.ALLOWED:
            return
        own = statuses.pop(author.id, None)
        if own is not None and not own.enforced:
            await self._welcome_back(message.channel, author)
        now = message.created_at.timestamp()
        lines = [
            _notice(mentioned[member_id], status)
            for member_id, status in statuses.items()
            if self.notices.update_rate_limit((message.channel.id, member_id), now) is None
        ]
        if lines:
            await _post(message.channel, limits.fit_lines(lines, limits.CONTENT))

    async def _welcome_back(self, channel: discord.abc.Messageable, member: discord.Member) -> None:
        """End the member's AFK (unless another process just did) and say so."""
        status = await self.db.afk.clear(member.guild.id, member.id)
        if status is not None:
            await _restore(member, status)
            await _post(channel, f"Welcome back, {_name(member)}! You are no longer AFK.")

    # Expiry ----------------------------------------------------------------------------------

    async def expire(self, now: datetime | None = None) -> list[AFKSchema]:
        """End the AFK statuses expired at ``now`` (default: the current time) and put the
        nicknames back. A status whose restore fails is released (it stays) and retried by a
        later run. Returns the statuses ended. Raises the database's errors."""
        ended: list[AFKSchema] = []
        while True:
            claimed = await self.db.afk.claim_expired(now, limit=MAX_CLAIM)
            failed = False
            for status in claimed:
                try:
                    await restore_nickname(self.bot, status)
                except Exception:
                    log.exception(
                        "guild %s: restoring the nickname of %s failed; retried later",
                        status.guild_id,
                        status.member_id,
                    )
                    await self.db.afk.release(status.guild_id, status.member_id)
                    failed = True
                    continue
                if await self.db.afk.complete_expiry(status.guild_id, status.member_id):
                    ended.append(status)
            # A full batch may have more behind it; one with a failure would be claimed again.
            if len(claimed) < MAX_CLAIM or failed:
                return ended


# Helpers ---------------------------------------------------------------------------------------


async def restore_nickname(bot: commands.Bot, status: AFKSchema) -> None:
    """Put back the nickname the member had before ``status`` (if the AFK one is still there),
    finding the member in the bot's cache or on Discord (another shard's guild); nothing when
    they are gone. Discord refusing the rename is logged, not raised."""
    try:
        guild = bot.get_guild(status.guild_id) or await bot.fetch_guild(status.guild_id)
        member = guild.get_member(status.member_id) or await guild.fetch_member(status.member_id)
    except discord.HTTPException:
        return
    await _restore(member, status)


def _name(member: discord.abc.User) -> str:
    """The member's name for a message, without the AFK tag, markdown escaped (no ping)."""
    return discord.utils.escape_markdown(member.display_name.removeprefix(TAG))


def _because(reason: str) -> str:
    return f": {reason}" if reason else "."


def _notice(member: discord.abc.User, status: AFKSchema) -> str:
    """``X is AFK: reason (since <t:...:R>)``."""
    reason = limits.fit(status.reason, SHOWN_REASON)
    since = discord.utils.format_dt(status.since, "R")
    return f"{_name(member)} is AFK{': ' + reason if reason else ''} (since {since})"


def _can_rename(member: discord.Member) -> bool:
    """Whether the bot may change ``member``'s nickname."""
    guild = member.guild
    me = guild.me
    return (
        me.guild_permissions.manage_nicknames
        and member.id not in (guild.owner_id, me.id)
        and member.top_role < me.top_role
    )


async def _rename(member: discord.Member, nick: str | None) -> None:
    """Change the nickname; Discord refusing is logged, not raised."""
    try:
        await member.edit(nick=nick, reason="AFK")
    except discord.HTTPException as exc:
        log.info("guild %s: cannot rename %s: %s", member.guild.id, member.id, exc)


async def _restore(member: discord.Member, status: AFKSchema) -> None:
    """Put back the nickname the member had before the AFK (if the AFK one is still there)."""
    if (member.nick or "").startswith(TAG):
        await _rename(member, status.nickname or None)


async def _post(channel: discord.abc.Messageable, text: str) -> None:
    """Send ``text`` pinging nobody; a channel the bot cannot post in is logged."""
    try:
        await channel.send(text, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        log.info("cannot post an AFK message: %s", exc)


setup, teardown = cog_setup(AFK)
