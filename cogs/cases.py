"""Looking up and correcting moderation cases.

Commands (level 2 or Moderate Members): ``case <number>`` (slash: ``/case show``),
``cases @user [page]`` (a member's cases, newest first,
:data:`~botdata_cogs.paging.PAGE_SIZE` a page),
``case edit <number> <reason>`` (the old reason stays in the case's history),
``case void <number> <reason>`` (the case stays, marked void; voiding changes the record only,
not the ban, timeout or jail on Discord).
"""

from __future__ import annotations

import discord
from discord.ext import commands

from botdata.errors import CaseAlreadyVoidedError, CaseNotFoundError
from botdata.schemas import CaseSchema

from .core import (
    BotdataCog,
    GuildContext,
    cog_setup,
    hybrid_command,
    hybrid_group,
    level_or_permissions,
)
from .modlog import Number, Reason, case_embed, name_of, type_labels
from .paging import Page, list_embed, page_of, shorten

CASES_LEVEL = 2


class Cases(BotdataCog):
    """Moderation cases: look up, list, edit, void."""

    @hybrid_group(name="case", fallback="show")
    @commands.guild_only()
    @level_or_permissions(CASES_LEVEL, moderate_members=True)
    async def case(self, ctx: GuildContext, number: Number) -> None:
        """Show a case."""
        try:
            case = await self.db.cases.get(ctx.guild.id, number)
        except CaseNotFoundError:
            await self.send(ctx, f"There is no case #{number}.")
            return
        await self.send(ctx, embed=await case_embed(self.db, case))

    @case.command(name="edit")
    @level_or_permissions(CASES_LEVEL, moderate_members=True)
    async def edit(self, ctx: GuildContext, number: Number, *, reason: Reason) -> None:
        """Change a case's reason."""
        try:
            case = await self.db.cases.edit(
                ctx.guild.id, number, reason=reason, editor_id=ctx.author.id
            )
        except CaseNotFoundError:
            await self.send(ctx, f"There is no case #{number}.")
            return
        await self.send(
            ctx, f"Case #{number}'s reason was changed.", embed=await case_embed(self.db, case)
        )

    @case.command(name="void")
    @level_or_permissions(CASES_LEVEL, moderate_members=True)
    async def void(self, ctx: GuildContext, number: Number, *, reason: Reason) -> None:
        """Void a case: it stays on record, marked void."""
        try:
            await self.db.cases.void(ctx.guild.id, number, by=ctx.author.id, reason=reason)
        except CaseNotFoundError:
            await self.send(ctx, f"There is no case #{number}.")
            return
        except CaseAlreadyVoidedError:
            await self.send(ctx, f"Case #{number} is already void.")
            return
        await self.send(ctx, f"Case #{number} is void.")

    @hybrid_command(name="cases")
    @commands.guild_only()
    @level_or_permissions(CASES_LEVEL, moderate_members=True)
    async def cases(self, ctx: GuildContext, user: discord.User, page: Page = 1) -> None:
        """List a member's cases, newest first."""
        guild_id = ctx.guild.id

        async def fetch(limit: int, before: int | None) -> list[CaseSchema]:
            return await self.db.cases.for_user(guild_id, user.id, limit=limit, before=before)

        found, more = await page_of(fetch, page)
        if not found:
            await self.send(ctx, f"{name_of(user)} has no cases{_on_page(page)}.")
            return
        labels = await type_labels(self.db, guild_id, found)
        lines = [
            _strike(
                f"**#{case.number}** {label} · {discord.utils.format_dt(case.created_at, 'd')}"
                f" · {shorten(case.reason)}",
                not case.active,
            )
            for case, label in zip(found, labels, strict=True)
        ]
        embed = list_embed(
            f"Cases of {user}", lines, page, more, f"{ctx.clean_prefix}cases {user.id} {page + 1}"
        )
        await self.send(ctx, embed=embed)


def _strike(line: str, struck: bool) -> str:
    return f"~~{line}~~ (void)" if struck else line


def _on_page(page: int) -> str:
    return f" on page {page}" if page > 1 else ""


setup, teardown = cog_setup(Cases)
