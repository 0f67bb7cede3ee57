"""Reminders: the bot reminds a member of something after a while (``db.reminders``).

Commands (any member):

- ``remind <when> <what>``: ``when`` is a duration like ``10m``, ``2h30m``, ``1d``, ``1w``
  (at most 5 years); ``what`` is up to 2000 characters. A member has at most
  ``REMINDER_MAX_PER_USER`` pending reminders per server.
- ``reminders`` (slash: ``/reminders list``): your pending reminders, soonest first, with ids
- ``reminder cancel <id>`` (also ``reminders cancel <id>``): cancel one of your own

Delivery
    While the cog is loaded, :meth:`Reminders.deliver` is a delivery target of the handle's
    reminder dispatcher (``db.reminders.start`` in ``cog_load``, ``stop`` in ``cog_unload``);
    reminders that came due while it was not loaded are delivered as soon as it loads. It posts
    ``<@member> reminder: <what>`` in the channel the reminder was set in, pinging only that
    member (a text too long for one message goes in an embed). When that channel is gone or the
    bot may no longer post there, it DMs the member instead. Deliveries wait until the bot is
    connected and ready, so channels and members resolve from its cache.

    Two bots in one process may share one handle (``bot.botdata`` set to the same
    :class:`botdata.Database`): each bot's cog is a target that accepts the guilds its bot
    sees, so a reminder is delivered by the bot in its guild; one nobody sees goes to the bot
    whose cog loaded first (through Discord's API, or by DM). Unloading one bot's cog leaves
    the dispatcher running for the other; the last one out stops it.

    Repeats: every message is sent with the reminder's id as its ``nonce``; discord.py then sets
    ``enforce_nonce`` (its ``send`` does whenever a nonce is given), so Discord drops a second
    message with the same nonce from the bot within a few minutes. A reminder delivered again
    after a crashed process's claim ran out (see :mod:`botdata.managers.dispatcher`) is then
    not posted twice.

    Failures: the dispatcher marks a reminder sent when :meth:`~Reminders.deliver` returns and
    retries it later (with a growing delay, up to an hour) when it raises. ``deliver`` therefore
    raises on failures that may pass (Discord errors, network trouble) and returns, after
    logging, when the reminder can never be delivered: the channel is unusable and the member's
    account is gone or their DMs are closed. After :data:`MAX_ATTEMPTS` failed tries it gives up
    too (logged), so a reminder is not retried forever.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

import discord
from discord.ext import commands

from botdata.managers.reminders import MAX_CONTENT
from botdata.schemas import ReminderSchema

from . import limits
from .core import (
    NO_MENTIONS,
    BotdataCog,
    Duration,
    GuildContext,
    cog_setup,
    hybrid_command,
    hybrid_group,
)
from .paging import shorten

log = logging.getLogger(__name__)

#: Deliveries tried (the first and the retries) before a reminder is given up.
MAX_ATTEMPTS = 10

#: Command argument: a reminder's text (the rest of the message).
What = commands.Range[str, 1, MAX_CONTENT]

#: Command argument: a reminder id (Discord's integer options stop at 2**53).
ReminderId = commands.Range[int, 1, 2**53]


class UndeliverableError(Exception):
    """Neither the reminder's channel nor the member's DMs can take it, for good."""


class Reminders(BotdataCog):
    """Reminders members set for themselves."""

    async def cog_load(self) -> None:
        """Start delivering the reminders of the guilds the bot sees (those already due
        first)."""
        await self.db.reminders.start(self.deliver, accepts=self.sees)

    async def cog_unload(self) -> None:
        """Stop delivering; reminders in flight are left for the next delivery."""
        await self.db.reminders.stop(self.deliver)

    def sees(self, guild_id: int) -> bool:
        """Whether the bot is in the guild (it delivers that guild's reminders)."""
        return self.bot.get_guild(guild_id) is not None

    # Commands ----------------------------------------------------------------------------------

    @hybrid_command(name="remind")
    @commands.guild_only()
    async def remind(
        self, ctx: GuildContext, when: Annotated[timedelta, Duration], *, what: What
    ) -> None:
        """Set a reminder: when (10m, 2h30m, 1d) and what."""
        due_at = self.db.clock.now() + when
        reminder = await self.db.reminders.create(
            ctx.guild.id, ctx.author.id, ctx.channel.id, what, due_at
        )
        due = reminder.due_at
        await self.send(
            ctx,
            f"Reminder #{reminder.id} set for {discord.utils.format_dt(due)}"
            f" ({discord.utils.format_dt(due, 'R')}).",
        )

    @hybrid_group(name="reminders", aliases=["reminder"], fallback="list")
    @commands.guild_only()
    async def reminders(self, ctx: GuildContext) -> None:
        """List your pending reminders."""
        pending = await self.db.reminders.pending(ctx.guild.id, ctx.author.id)
        if not pending:
            await self.send(ctx, "You have no pending reminders.")
            return
        lines = [
            f"**#{r.id}** {discord.utils.format_dt(r.due_at, 'R')} · {shorten(r.content)}"
            for r in pending
        ]
        embed = discord.Embed(
            title="Your reminders", description=limits.fit_lines(lines, limits.EMBED_DESCRIPTION)
        )
        embed.set_footer(text=f"Cancel one with {ctx.clean_prefix}reminder cancel <id>")
        await self.send(ctx, embed=embed, mentions=NO_MENTIONS)

    @reminders.command(name="cancel")
    async def cancel(self, ctx: GuildContext, reminder_id: ReminderId) -> None:
        """Cancel one of your pending reminders."""
        await self.db.reminders.cancel(ctx.guild.id, reminder_id, user_id=ctx.author.id)
        await self.send(ctx, f"Reminder #{reminder_id} cancelled.")

    # Delivery ----------------------------------------------------------------------------------

    async def deliver(self, reminder: ReminderSchema) -> None:
        """Post ``reminder`` in its channel, or DM the member when the channel is unusable.

        Returns once it is delivered or can never be (logged). Raises what Discord raised when
        a later try may succeed (the dispatcher retries it), until :data:`MAX_ATTEMPTS` tries.
        """
        try:
            await self._deliver(reminder)
        except UndeliverableError as reason:
            log.warning("reminder %d dropped: %s", reminder.id, reason)
        except Exception:
            if reminder.attempts + 1 < MAX_ATTEMPTS:
                raise
            log.exception("reminder %d dropped after %d tries", reminder.id, MAX_ATTEMPTS)

    async def _deliver(self, reminder: ReminderSchema) -> None:
        await self.bot.wait_until_ready()
        channel = await self._channel(reminder.channel_id)
        if channel is not None:
            try:
                await channel.send(
                    **_message(f"<@{reminder.user_id}> reminder:", reminder.content),
                    nonce=reminder.id,
                    allowed_mentions=discord.AllowedMentions(
                        users=[discord.Object(reminder.user_id)],
                        everyone=False,
                        roles=False,
                        replied_user=False,
                    ),
                )
                return
            except (discord.NotFound, discord.Forbidden):
                pass  # deleted meanwhile, or the bot may not post there: DM instead
        await self._dm(reminder)

    async def _channel(self, channel_id: int) -> discord.abc.Messageable | None:
        """The channel to post in, or None when it is gone or hidden from the bot."""
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(channel_id)
            except (discord.NotFound, discord.Forbidden):
                return None
        return channel if isinstance(channel, discord.abc.Messageable) else None

    async def _dm(self, reminder: ReminderSchema) -> None:
        user = self.bot.get_user(reminder.user_id)
        try:
            if user is None:
                user = await self.bot.fetch_user(reminder.user_id)
            guild = self.bot.get_guild(reminder.guild_id)
            where = f" (set in {guild.name})" if guild is not None else ""
            await user.send(
                **_message(f"Reminder{where}:", reminder.content),
                nonce=reminder.id,
                allowed_mentions=NO_MENTIONS,
            )
        except discord.NotFound:
            raise UndeliverableError("channel unusable and the member's account is gone") from None
        except discord.Forbidden:
            raise UndeliverableError("channel unusable and the member's DMs are closed") from None


def _message(head: str, content: str) -> dict[str, Any]:
    """``send`` arguments for ``head content``: one line when it fits a message, else ``head``
    with the content in an embed (a reminder's 2000 characters fit its description)."""
    text = f"{head} {content}"
    if limits.length(text) <= limits.CONTENT:
        return {"content": text}
    return {"content": head, "embed": discord.Embed(description=content)}


setup, teardown = cog_setup(Reminders)
