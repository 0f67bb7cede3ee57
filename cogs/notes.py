"""Moderators' notes about members: private remarks that are not cases.

Commands (level 2 or Moderate Members): ``note @user <text>`` (slash: ``/note add``; up to
2000 characters), ``notes @user [page]`` (newest first), ``note delete <number>``.
"""

from __future__ import annotations

import discord
from discord.ext import commands

from botdata.errors import NoteNotFoundError
from botdata.managers.notes import MAX_CONTENT
from botdata.schemas import NoteSchema

from .core import (
    BotdataCog,
    GuildContext,
    cog_setup,
    hybrid_command,
    hybrid_group,
    level_or_permissions,
)
from .modlog import Number, name_of
from .paging import Page, list_embed, page_of, shorten

NOTES_LEVEL = 2


class Notes(BotdataCog):
    """Moderators' notes about members."""

    @hybrid_group(name="note", fallback="add")
    @commands.guild_only()
    @level_or_permissions(NOTES_LEVEL, moderate_members=True)
    async def note(
        self,
        ctx: GuildContext,
        user: discord.User,
        *,
        text: commands.Range[str, 1, MAX_CONTENT],
    ) -> None:
        """Write a note about a member."""
        note = await self.db.notes.add(ctx.guild.id, user.id, ctx.author.id, text)
        await self.send(ctx, f"Note #{note.number} about {name_of(user)} saved.")

    @note.command(name="delete")
    @level_or_permissions(NOTES_LEVEL, moderate_members=True)
    async def delete(self, ctx: GuildContext, number: Number) -> None:
        """Delete a note."""
        try:
            await self.db.notes.delete(ctx.guild.id, number, by=ctx.author.id)
        except NoteNotFoundError:
            await self.send(ctx, f"There is no note #{number}.")
            return
        await self.send(ctx, f"Note #{number} deleted.")

    @hybrid_command(name="notes")
    @commands.guild_only()
    @level_or_permissions(NOTES_LEVEL, moderate_members=True)
    async def notes(self, ctx: GuildContext, user: discord.User, page: Page = 1) -> None:
        """List the notes about a member, newest first."""
        guild_id = ctx.guild.id

        async def fetch(limit: int, before: int | None) -> list[NoteSchema]:
            return await self.db.notes.for_user(guild_id, user.id, limit=limit, before=before)

        found, more = await page_of(fetch, page)
        if not found:
            where = f" on page {page}" if page > 1 else ""
            await self.send(ctx, f"There are no notes about {name_of(user)}{where}.")
            return
        lines = [
            f"**#{note.number}** <@{note.moderator_id}> · "
            f"{discord.utils.format_dt(note.created_at, 'd')} · {shorten(note.content)}"
            for note in found
        ]
        embed = list_embed(
            f"Notes about {user}",
            lines,
            page,
            more,
            f"{ctx.clean_prefix}notes {user.id} {page + 1}",
        )
        await self.send(ctx, embed=embed)


setup, teardown = cog_setup(Notes)
