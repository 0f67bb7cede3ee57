"""Snippets: named texts members save and call up (``db.snippets``).

Commands:

- ``snippet <name>`` (slash: ``/snippet get``): post it. (A prefix-only ``snippet get``
  subcommand is not possible: discord.py drops the slash fallback of that name when it copies
  the group. A snippet named like a subcommand is posted with ``<prefix><name>``.)
- ``snippet create <name> <content>``: names are 1-100 ASCII letters, digits, ``_`` and ``-``,
  unique in the server ignoring case (aliases included); content is up to 4000 characters
- ``snippet edit <name> <content>``, ``snippet delete <name>``: the author or a moderator; a
  locked snippet only a moderator
- ``snippet alias <name> <alias>`` (another name for it), ``snippet unalias <alias>``: same rule;
  a snippet has at most :data:`~botdata.managers.snippets.MAX_ALIASES` (10) aliases
- ``snippet lock <name>``, ``snippet unlock <name>``: moderators only
- ``snippet info <name>``: author, uses, creation time, aliases, lock
- ``snippet claim <name>``: become the author of a snippet whose author has left the server
  (not of a locked one)
- ``snippets [query] [page]``: the server's snippets, most used first; ``query`` keeps those with
  a name or alias containing it (a query of digits only is read as the page number)

Moderators are members with permission level 2 (:data:`MODERATOR_LEVEL`) or the Manage
Messages permission. A snippet-banned member (``snippetban``, see
:mod:`botdata_cogs.moderation`) may still read snippets, but not create, edit, alias or claim them.

Short form
    ``<prefix><name>`` posts the snippet ``name`` when ``name`` is no command: the cog's
    ``on_message`` listener builds the message's context (``bot.get_context``) and, when it has a
    prefix but no command, looks up ``ctx.invoked_with`` as a snippet (name or alias). The guild's
    access rules and the rate limit apply as to ``snippet <name>``; a word that is no snippet is
    left alone (the bot stays silent). Commands always win: a snippet called like a command is
    reached with ``snippet <name>``.

Listings
    Every list of names fits one message, also for a snippet with more aliases than the cap (made
    before there was one): ``snippet info`` shows the aliases that fit an embed field and counts
    the rest ("and 5 more"); ``snippets`` shows 10 snippets a page, each line naming the aliases
    that fit :data:`LINE_ALIASES` characters and counting the rest.

Posting
    Every use (``snippet <name>`` or the short form) counts one use (``db.snippets.use``). The
    content is sent pinging nobody (:data:`~botdata_cogs.core.NO_MENTIONS`: members wrote it), as a
    plain message up to Discord's 2000 characters and as an embed's description beyond that.
    (Discord counts characters in UTF-16 units: a snippet of more than 4096 of them, possible with
    4000 characters of emoji, is cut there with an ellipsis.)
"""

from __future__ import annotations

from typing import Annotated, TypedDict

import discord
from discord.ext import commands

from botdata.errors import InvalidSnippetNameError, SnippetNotFoundError
from botdata.managers.snippets import MAX_CONTENT
from botdata.schemas import SnippetSchema

from .core import (
    NO_MENTIONS,
    BotdataCog,
    GuildContext,
    Ignored,
    cog_setup,
    error_message,
    hybrid_command,
    hybrid_group,
    in_guild,
    level_of,
    level_or_permissions,
    starts_with_prefix,
)
from .limits import CONTENT, EMBED_DESCRIPTION, FIELD_VALUE, fit, length
from .paging import PAGE_SIZE, Page, list_embed

#: Permission level of snippet moderators (Manage Messages also makes one).
MODERATOR_LEVEL = 2
#: Characters of aliases on one line of the ``snippets`` list (ten lines fit an embed).
LINE_ALIASES = 200

#: Command argument: a snippet name or alias (the manager checks its characters).
Name = commands.Range[str, 1, 100]
#: Command argument: a snippet's content (the rest of the message).
Content = commands.Range[str, 1, MAX_CONTENT]


class Query(commands.Converter[str]):
    """A search in snippet names; digits only are not a query (they are a page number)."""

    async def convert(self, ctx: commands.Context, argument: str) -> str:
        if argument.isdigit():
            raise commands.BadArgument(f"`{argument}` is a page number, not a search.")
        return argument


class Actor(TypedDict):
    """Who changes a snippet: the manager's ``actor_id`` and ``is_moderator`` arguments."""

    actor_id: int
    is_moderator: bool


class SnippetBanned(commands.CheckFailure):
    """The member is banned from snippets."""


class Snippets(BotdataCog):
    """Saved snippets members call up by name."""

    # Reading -----------------------------------------------------------------------------------

    @hybrid_group(name="snippet", fallback="get")
    @commands.guild_only()
    async def snippet(self, ctx: GuildContext, name: Name) -> None:
        """Post a snippet."""
        await self._post_snippet(ctx, name)

    @snippet.command(name="info")
    async def info(self, ctx: GuildContext, name: Name) -> None:
        """Show a snippet's author, uses, aliases and lock."""
        try:
            found = await self.db.snippets.get(ctx.guild.id, name)
        except SnippetNotFoundError:
            await self.send(ctx, _missing(name))
            return
        await self.send(ctx, embed=info_embed(ctx.guild, found))

    @hybrid_command(name="snippets")
    @commands.guild_only()
    async def snippets(
        self, ctx: GuildContext, query: Annotated[str | None, Query | None] = None, page: Page = 1
    ) -> None:
        """List the server's snippets, most used first, or those whose name contains a query."""
        found = await self.db.snippets.list(
            ctx.guild.id, query=query, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
        matching = f" matching `{query}`" if query else ""
        if not found:
            where = f" on page {page}" if page > 1 else ""
            await self.send(ctx, f"There are no snippets{matching}{where}.")
            return
        lines = [_line(snippet) for snippet in found[:PAGE_SIZE]]
        next_command = f"{ctx.clean_prefix}snippets {query + ' ' if query else ''}{page + 1}"
        embed = list_embed(f"Snippets{matching}", lines, page, len(found) > PAGE_SIZE, next_command)
        await self.send(ctx, embed=embed, mentions=NO_MENTIONS)

    # Writing -----------------------------------------------------------------------------------

    @snippet.command(name="create")
    async def create(self, ctx: GuildContext, name: Name, *, content: Content) -> None:
        """Save a new snippet."""
        await self._ensure_not_banned(ctx)
        created = await self.db.snippets.create(
            ctx.guild.id, name, content, author_id=ctx.author.id
        )
        await self.send(ctx, f"Snippet `{created.name}` saved.")

    @snippet.command(name="edit")
    async def edit(self, ctx: GuildContext, name: Name, *, content: Content) -> None:
        """Replace a snippet's content (its author or a moderator)."""
        actor = await self._actor(ctx, writing=True)
        edited = await self.db.snippets.edit(ctx.guild.id, name, content, **actor)
        await self.send(ctx, f"Snippet `{edited.name}` updated.")

    @snippet.command(name="delete")
    async def delete(self, ctx: GuildContext, name: Name) -> None:
        """Delete a snippet and its aliases (its author or a moderator)."""
        actor = await self._actor(ctx, writing=False)
        deleted = await self.db.snippets.delete(ctx.guild.id, name, **actor)
        await self.send(ctx, f"Snippet `{deleted.name}` deleted.")

    @snippet.command(name="alias")
    async def alias(self, ctx: GuildContext, name: Name, alias: Name) -> None:
        """Give a snippet another name (its author or a moderator)."""
        actor = await self._actor(ctx, writing=True)
        changed = await self.db.snippets.add_alias(ctx.guild.id, name, alias, **actor)
        await self.send(ctx, f"`{alias}` now also calls up snippet `{changed.name}`.")

    @snippet.command(name="unalias")
    async def unalias(self, ctx: GuildContext, alias: Name) -> None:
        """Remove one of a snippet's aliases (its author or a moderator)."""
        actor = await self._actor(ctx, writing=False)
        changed = await self.db.snippets.remove_alias(ctx.guild.id, alias, **actor)
        await self.send(ctx, f"`{alias}` no longer calls up snippet `{changed.name}`.")

    @snippet.command(name="lock")
    @level_or_permissions(MODERATOR_LEVEL, manage_messages=True)
    async def lock(self, ctx: GuildContext, name: Name) -> None:
        """Lock a snippet: only moderators may change it."""
        await self._set_locked(ctx, name, True)

    @snippet.command(name="unlock")
    @level_or_permissions(MODERATOR_LEVEL, manage_messages=True)
    async def unlock(self, ctx: GuildContext, name: Name) -> None:
        """Unlock a snippet: its author may change it again."""
        await self._set_locked(ctx, name, False)

    @snippet.command(name="claim")
    async def claim(self, ctx: GuildContext, name: Name) -> None:
        """Become the author of a snippet whose author has left the server."""
        await self._ensure_not_banned(ctx)
        found = await self.db.snippets.get(ctx.guild.id, name)
        claimed = await self.db.snippets.claim(
            ctx.guild.id,
            name,
            new_author_id=ctx.author.id,
            author_present=ctx.guild.get_member(found.author_id) is not None,
        )
        await self.send(ctx, f"You are now the author of snippet `{claimed.name}`.")

    # The short form ----------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Post the snippet of ``<prefix><name>`` when ``name`` is no command."""
        if message.guild is None or message.author.bot:
            return
        if not await starts_with_prefix(self.bot, message):
            return  # most messages: no Context needed
        ctx = await self.bot.get_context(message)
        if not in_guild(ctx) or ctx.prefix is None or ctx.command is not None:
            return
        if not ctx.invoked_with:
            return
        try:
            await self.db.snippets.get(message.guild.id, ctx.invoked_with)
        except (SnippetNotFoundError, InvalidSnippetNameError):
            return  # not a snippet: leave the word alone
        # Checked and answered as ``snippet <name>`` would be.
        ctx.command = self.snippet
        try:
            await self.cog_check(ctx)
        except Ignored:
            return
        except commands.CheckFailure as refused:
            await self.send(ctx, error_message(ctx, refused), ephemeral=True)
            return
        await self._post_snippet(ctx, ctx.invoked_with)

    # Helpers -----------------------------------------------------------------------------------

    async def _post_snippet(self, ctx: GuildContext, name: str) -> None:
        """Count a use of the snippet ``name`` and post its content, pinging nobody."""
        try:
            used = await self.db.snippets.use(ctx.guild.id, name)
        except SnippetNotFoundError:
            await self.send(ctx, _missing(name))
            return
        if length(used.content) <= CONTENT:
            await self.send(ctx, used.content, mentions=NO_MENTIONS)
        else:
            embed = discord.Embed(description=fit(used.content, EMBED_DESCRIPTION))
            await self.send(ctx, embed=embed, mentions=NO_MENTIONS)

    async def _set_locked(self, ctx: GuildContext, name: str, locked: bool) -> None:
        changed = await self.db.snippets.set_locked(
            ctx.guild.id, name, locked, actor_id=ctx.author.id, is_moderator=True
        )
        await self.send(ctx, f"Snippet `{changed.name}` is {'locked' if locked else 'unlocked'}.")

    async def _actor(self, ctx: GuildContext, *, writing: bool) -> Actor:
        """The author as the one changing a snippet (the manager lets its author or a
        moderator). ``writing`` (content or names): raises :class:`SnippetBanned` for a
        snippet-banned author."""
        if writing:
            await self._ensure_not_banned(ctx)
        return {"actor_id": ctx.author.id, "is_moderator": await is_moderator(ctx)}

    async def _ensure_not_banned(self, ctx: GuildContext) -> None:
        """Raise :class:`SnippetBanned` when the author is banned from snippets."""
        if await self.db.cases.is_snippet_banned(ctx.guild.id, ctx.author.id):
            raise SnippetBanned("You are banned from creating or changing snippets.")


async def is_moderator(ctx: GuildContext) -> bool:
    """Whether the author moderates snippets: level :data:`MODERATOR_LEVEL` or Manage Messages."""
    if ctx.author.guild_permissions.manage_messages:
        return True
    return await level_of(ctx) >= MODERATOR_LEVEL


def info_embed(guild: discord.Guild, snippet: SnippetSchema) -> discord.Embed:
    """An embed describing ``snippet`` (not its content)."""
    embed = discord.Embed(title=f"Snippet {snippet.name}", timestamp=snippet.created_at)
    left = "" if guild.get_member(snippet.author_id) else " (left the server)"
    embed.add_field(name="Author", value=f"<@{snippet.author_id}>{left}")
    embed.add_field(name="Uses", value=str(snippet.uses))
    embed.add_field(name="Locked", value="yes" if snippet.locked else "no")
    aliases = listed(snippet.aliases, FIELD_VALUE) or "none"
    embed.add_field(name="Aliases", value=aliases, inline=False)
    embed.set_footer(text="Created")
    return embed


def _line(snippet: SnippetSchema) -> str:
    uses = f"{snippet.uses} use" + ("" if snippet.uses == 1 else "s")
    line = f"`{snippet.name}` · {uses}"
    if snippet.aliases:
        line += " · aka " + listed(snippet.aliases, LINE_ALIASES)
    return line + (" · locked" if snippet.locked else "")


def listed(names: list[str], budget: int) -> str:
    """``names`` quoted and joined, like ``"`a`, `b` and 3 more"``: the names that fit in
    ``budget`` characters, the rest counted. A budget of 120 or more always shows the first
    (names are at most 100 ASCII characters)."""
    shown: list[str] = []
    for name in names:
        more = len(names) - len(shown) - 1
        text = ", ".join([*shown, f"`{name}`"]) + (f" and {more} more" if more else "")
        if len(text) > budget:
            break
        shown.append(f"`{name}`")
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _missing(name: str) -> str:
    return f"There is no snippet called `{name}`."


setup, teardown = cog_setup(Snippets)
