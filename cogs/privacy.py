"""Privacy requests: members export or erase what the bot stores about them.

Commands (anyone, in a server or in DMs): ``mydata`` (what these do), ``mydata export`` and
``mydata erase [confirm]``.

- ``export`` sends a JSON file of what botdata holds about the member (``db.privacy.export_user``:
  their own data and the records about them; of what they did as a moderator, only which case
  or note, when and in what role, never the other member's reason or notes) by DM, never in a
  server channel; when their DMs are closed they are told to open them. Besides
  the per-member limit of every command, exports have their own rate-limit budget
  (:data:`EXPORT_SCOPE`, with the default ``COMMAND_RATE_LIMIT`` per ``COMMAND_RATE_WINDOW``).
- ``erase`` asks first: Erase / Cancel buttons only the member can press, for
  :data:`CONFIRM_TIMEOUT` seconds; ``mydata erase confirm`` skips the question. Erasure is
  ``db.privacy.erase_user``: the member's own data goes, moderation records servers keep about
  them stay. Their starboard copies are then deleted from Discord where the bot still can, and
  where they were AFK the nickname stored with the status is given back (only while their
  nickname still starts with the AFK tag, as when an AFK ends). The summary (row counts) goes by
  DM, or ephemerally after a button press: the counts of kept moderation records are not for a
  server channel.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import Literal

import discord
from discord.ext import commands

import botdata
from botdata.schemas import ErasureSummary, StarboardMessageSchema

from .afk import restore_nickname
from .core import NO_MENTIONS, BotdataCog, RateLimited, cog_setup, hybrid_group

log = logging.getLogger(__name__)

#: The rate-limit scope of exports (``COMMAND_RATE_LIMIT`` per ``COMMAND_RATE_WINDOW``).
EXPORT_SCOPE = "privacy-export"
#: Seconds the Erase / Cancel buttons wait for an answer.
CONFIRM_TIMEOUT = 60.0
ERASE_WARNING = (
    "This erases what I store about you in every server: levels, reminders, AFK status, "
    "snippets you wrote, your starred messages and stars, your dashboard account. Moderation "
    "records servers keep about you (cases, notes) stay. It cannot be undone. Erase?"
)
CLOSED_DMS = "I could not DM you: allow direct messages from server members, then ask again."


class Privacy(BotdataCog):
    """Export or erase your data."""

    def __init__(self, bot: commands.Bot, db: botdata.Database) -> None:
        super().__init__(bot, db)
        #: Erase questions waiting for an answer, by member id (stopped when the cog unloads).
        self.prompts: dict[int, EraseConfirmation] = {}

    async def cog_unload(self) -> None:
        """Stop the waiting erase questions: their buttons must not reach a closed handle."""
        for prompt in self.prompts.values():
            prompt.stop()
        self.prompts.clear()

    @hybrid_group(name="mydata", invoke_without_command=True)
    async def mydata(self, ctx: commands.Context) -> None:
        """What you can do with the data the bot stores about you."""
        p = ctx.clean_prefix
        await self.send(
            ctx,
            f"`{p}mydata export`: get what I store about you, as a file by DM.\n"
            f"`{p}mydata erase`: erase it (moderation records servers keep stay).",
        )

    @mydata.command(name="export")
    async def export(self, ctx: commands.Context) -> None:
        """Get everything the bot stores about you, as a JSON file by DM."""
        if await self.db.rate_limits.hit(ctx.author.id, scope=EXPORT_SCOPE):
            raise RateLimited("You asked for your data too often; wait a minute.")
        data = await self.db.privacy.export_user(ctx.author.id)
        file = discord.File(
            io.BytesIO(json.dumps(data, indent=2).encode()),
            filename=f"mydata-{ctx.author.id}.json",
        )
        if not await _dm(ctx.author, "Everything I store about you:", file=file):
            await self.send(ctx, CLOSED_DMS, ephemeral=True)
        elif ctx.guild is not None or ctx.interaction is not None:
            await self.send(ctx, "I sent you your data by DM.", ephemeral=True)

    @mydata.command(name="erase")
    async def erase(self, ctx: commands.Context, confirm: Literal["confirm"] | None = None) -> None:
        """Erase what the bot stores about you; asks first unless you add `confirm`."""
        if confirm is None:
            prompt = EraseConfirmation(self, ctx.author)
            previous = self.prompts.pop(ctx.author.id, None)
            if previous is not None:
                previous.stop()
            self.prompts[ctx.author.id] = prompt
            prompt.message = await self.send(ctx, ERASE_WARNING, view=prompt, ephemeral=True)
            return
        summary = await self.erase_data(ctx.author.id)
        if not await _dm(ctx.author, summary):
            await self.send(
                ctx, "Your data has been erased (I could not DM you the details).", ephemeral=True
            )
        elif ctx.guild is not None or ctx.interaction is not None:
            await self.send(
                ctx, "Your data has been erased; I sent you the details by DM.", ephemeral=True
            )

    async def erase_data(self, user_id: int) -> str:
        """Erase the user's data, delete their starboard copies, give back the nicknames of
        their AFK statuses; returns the summary to show.

        Raises what ``db.privacy.erase_user`` raises.
        """
        summary = await self.db.privacy.erase_user(user_id)
        removed = 0
        for copy in summary.starboard_copies:
            removed += await self._delete_copy(copy)
        for status in summary.afk_statuses:
            await restore_nickname(self.bot, status)
        return describe(summary, removed)

    async def _delete_copy(self, copy: StarboardMessageSchema) -> bool:
        """Delete a starboard copy from Discord; False when the bot cannot (anymore)."""
        guild = self.bot.get_guild(copy.guild_id)
        board = await self.db.starboard.get(copy.guild_id)
        if guild is None or board is None or copy.starboard_message_id is None:
            return False
        channel = guild.get_channel(board.channel_id)
        if not isinstance(channel, discord.TextChannel):
            return False
        try:
            await channel.get_partial_message(copy.starboard_message_id).delete()
        except discord.HTTPException as exc:
            log.info("guild %s: starboard copy not deleted: %s", guild.id, exc)
            return False
        return True

    def forget(self, prompt: EraseConfirmation) -> None:
        """Drop ``prompt`` from the waiting questions (when it is still the member's)."""
        if self.prompts.get(prompt.user.id) is prompt:
            del self.prompts[prompt.user.id]


class EraseConfirmation(discord.ui.View):
    """The Erase / Cancel buttons of ``mydata erase``; only the member who asked may press."""

    def __init__(self, cog: Privacy, user: discord.abc.User) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT)
        self.cog = cog
        self.user = user
        #: The question, to take its buttons away on timeout.
        self.message: discord.Message | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the member who asked may answer; others are told so."""
        if interaction.user.id == self.user.id:
            return True
        await interaction.response.send_message("These buttons are not yours.", ephemeral=True)
        return False

    @discord.ui.button(label="Erase my data", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        """Erase, then tell the member the summary (ephemeral)."""
        self._close()
        await interaction.response.edit_message(content="Erasing your data…", view=None)
        summary = await self.cog.erase_data(self.user.id)
        await interaction.edit_original_response(content="Your data has been erased.")
        await interaction.followup.send(summary, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        """Erase nothing."""
        self._close()
        await interaction.response.edit_message(content="Nothing was erased.", view=None)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item
    ) -> None:
        """Log a failed button and tell the member in one line (no traceback)."""
        log.error("erase button %s for user %s failed", item, self.user.id, exc_info=error)
        with contextlib.suppress(discord.HTTPException):
            await interaction.followup.send(
                "Something went wrong; it has been logged.", ephemeral=True
            )

    async def on_timeout(self) -> None:
        """Nobody answered: erase nothing, take the buttons away."""
        self.cog.forget(self)
        if self.message is not None:
            # The question may be gone (or ephemeral and expired).
            with contextlib.suppress(discord.HTTPException):
                await self.message.edit(content="No answer: nothing was erased.", view=None)

    def _close(self) -> None:
        self.stop()  # a second press is not dispatched
        self.cog.forget(self)


async def _dm(
    user: discord.User | discord.Member, content: str, *, file: discord.File | None = None
) -> bool:
    """DM ``user`` (pinging nobody), with ``file`` if given; False when their DMs are closed."""
    try:
        if file is None:
            await user.send(content, allowed_mentions=NO_MENTIONS)
        else:
            await user.send(content, file=file, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        return False
    return True


def describe(summary: ErasureSummary, copies_removed: int) -> str:
    """The erasure summary for the member: rows per table deleted, anonymised and kept, and
    whether cached copies are still to be removed."""
    lines = ["Your data has been erased."]
    for title, counts in (
        ("Deleted", summary.deleted),
        ("Anonymised", summary.anonymised),
        ("Kept (moderation records)", summary.kept),
    ):
        shown = ", ".join(f"{table} {count}" for table, count in counts.items() if count)
        lines.append(f"{title}: {shown or 'nothing'}.")
    if summary.starboard_copies:
        total = len(summary.starboard_copies)
        lines.append(f"Starboard copies removed: {copies_removed} of {total}.")
    if not summary.cache_cleared:
        lines.append(
            "The cache did not answer: cached copies (leaderboards and the like) are removed as"
            " soon as it does, until then some may still show."
        )
    return "\n".join(lines)


setup, teardown = cog_setup(Privacy)
