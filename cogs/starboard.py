"""The starboard: messages that get enough stars are copied to a starboard channel.

Commands (level 5 or Manage Server): ``starboard`` (the settings), ``starboard setup <channel>
[emoji] [threshold] [allow_self]`` (``allow_self``: yes/no, whether members' stars on their own
messages count; no by default) and ``starboard remove``.

Reactions
    The cog listens to the raw reaction events (``on_raw_reaction_add``/``remove``), which Discord
    sends for every message, cached or not; it has no other reaction listener, so each reaction
    is counted once. Only the configured emoji counts and bots' reactions never do. In the
    starboard channel only stars on copies count (they count for the original message). The
    guild must have a starboard; otherwise reactions are ignored. Access rules for the
    ``starboard`` module apply to adding a star: one that denies or ignores it for the member
    or the channel reacted in means the star does not count. Taking a star back is always
    handled (a star that was never counted is a no-op), so a star counted before a rule can
    still be removed.

    ``db.starboard`` counts atomically and decides what happens to the copy: post it (an embed of
    the message, pinging nobody, with ``⭐ 3 | #channel`` above it), edit its count, delete it, or
    nothing; whether a self-star counts is decided there too. Copies are looked up in the
    channel the starboard has now: copies left in a former starboard channel are not touched.

    A copy's embed is fitted into Discord's limits (:func:`botdata_cogs.limits.fit_embed`).
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Annotated

import discord
from discord.ext import commands

from botdata.errors import StarboardMessageNotFoundError, StarboardNotConfiguredError
from botdata.managers.permissions import Outcome
from botdata.schemas import StarAction, StarboardSchema, StarDecision

from . import limits
from .core import (
    NO_MENTIONS,
    BotdataCog,
    GuildContext,
    cog_setup,
    hybrid_group,
    level_or_permissions,
)

log = logging.getLogger(__name__)

SETUP_LEVEL = 5
DEFAULT_EMOJI = "\u2b50"
DEFAULT_THRESHOLD = 3
#: Command argument: how many stars a message needs.
Threshold = commands.Range[int, 1, 2**31 - 1]
#: What the bot needs in the starboard channel.
NEEDED = ("view_channel", "send_messages", "embed_links", "read_message_history")
#: Unicode categories an emoji is made of (symbols, modifiers, joiners, variation selectors).
_EMOJI_CATEGORIES = frozenset({"So", "Sk", "Mn", "Me", "Cf"})
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def is_unicode_emoji(text: str) -> bool:
    """Whether ``text`` looks like one Unicode emoji (a symbol, possibly with modifiers,
    joiners and variation selectors, or a keycap like 1️⃣)."""
    if not 1 <= len(text) <= 32:
        return False
    if text[0] in "0123456789#*" and text[-1] == "\u20e3":
        return all(unicodedata.category(c) in _EMOJI_CATEGORIES for c in text[1:])
    categories = [unicodedata.category(c) for c in text]
    return "So" in categories and all(c in _EMOJI_CATEGORIES for c in categories)


class StarEmoji(commands.Converter[str]):
    """A custom emoji (``<:name:id>``) or a Unicode emoji, as the text the starboard stores."""

    async def convert(self, ctx: commands.Context, argument: str) -> str:
        text = argument.strip()
        emoji = discord.PartialEmoji.from_str(text)
        if emoji.id is not None:
            return str(emoji)
        if is_unicode_emoji(text):
            return text
        raise commands.BadArgument(f"`{limits.excerpt(argument)}` is not an emoji.")


def same_emoji(configured: str, emoji: discord.PartialEmoji) -> bool:
    """Whether a reaction's ``emoji`` is the starboard's (custom emojis by id; Unicode ones
    ignoring variation selectors)."""
    wanted = discord.PartialEmoji.from_str(configured)
    if wanted.id is not None:
        return emoji.id == wanted.id
    return emoji.id is None and emoji.name.replace("\ufe0f", "") == wanted.name.replace(
        "\ufe0f", ""
    )


def header(emoji: str, stars: int, channel_id: int) -> str:
    """The text above a copy: ``⭐ 3 | #channel``."""
    return f"{emoji} {stars} | <#{channel_id}>"


def copy_embed(message: discord.Message) -> discord.Embed:
    """The embed of a starred message's copy: author, content, first image, jump link (fitted
    into Discord's limits)."""
    embed = discord.Embed(
        description=message.content or None,
        colour=discord.Colour.gold(),
        timestamp=message.created_at,
    )
    embed.set_author(name=message.author.display_name, icon_url=message.author.display_avatar.url)
    image = next((a for a in message.attachments if _is_image(a)), None)
    if image is not None:
        embed.set_image(url=image.url)
    embed.add_field(name="Original", value=f"[Jump to the message]({message.jump_url})")
    embed.set_footer(text=f"Message {message.id}")
    return limits.fit_embed(embed)


def _is_image(attachment: discord.Attachment) -> bool:
    if attachment.content_type:
        return attachment.content_type.startswith("image/")
    return attachment.filename.lower().endswith(_IMAGE_SUFFIXES)


def describe(board: StarboardSchema) -> str:
    """``3 ⭐ in #starboard, self-stars do not count`` for a starboard's settings."""
    self_stars = "count" if board.allow_self_star else "do not count"
    return f"{board.threshold} {board.emoji} in <#{board.channel_id}>, self-stars {self_stars}"


class Starboard(BotdataCog):
    """Messages starred by enough members are copied to a starboard channel."""

    @hybrid_group(name="starboard", fallback="show")
    @commands.guild_only()
    @level_or_permissions(SETUP_LEVEL, manage_guild=True)
    async def starboard(self, ctx: GuildContext) -> None:
        """Show this server's starboard settings."""
        board = await self.db.starboard.get(ctx.guild.id)
        if board is None:
            await self.send(ctx, "This server has no starboard: see `starboard setup`.")
        else:
            await self.send(ctx, f"Starboard: {describe(board)}.")

    @starboard.command(name="setup")
    @level_or_permissions(SETUP_LEVEL, manage_guild=True)
    async def setup_board(
        self,
        ctx: GuildContext,
        channel: discord.TextChannel,
        emoji: Annotated[str, StarEmoji] = DEFAULT_EMOJI,
        threshold: Threshold = DEFAULT_THRESHOLD,
        allow_self: bool = False,
    ) -> None:
        """Copy messages with `threshold` `emoji` reactions to `channel` (self-stars: yes/no)."""
        allowed = channel.permissions_for(ctx.guild.me)
        missing = [name.replace("_", " ") for name in NEEDED if not getattr(allowed, name)]
        if missing:
            await self.send(ctx, f"I need {', '.join(missing)} in {channel.mention}.")
            return
        board = await self.db.starboard.configure(
            ctx.guild.id,
            channel_id=channel.id,
            emoji=emoji,
            threshold=threshold,
            allow_self_star=allow_self,
        )
        await self.send(ctx, f"Starboard: {describe(board)}.")

    @starboard.command(name="remove")
    @level_or_permissions(SETUP_LEVEL, manage_guild=True)
    async def remove_board(self, ctx: GuildContext) -> None:
        """Turn the starboard off and forget its stars (copies already posted stay)."""
        if await self.db.starboard.remove(ctx.guild.id):
            await self.send(ctx, "Starboard turned off; the copies already posted stay.")
        else:
            await self.send(ctx, "This server has no starboard.")

    # Reactions ---------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """Count a star and post or update the copy."""
        await self._react(payload)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        """Take a star back and update or delete the copy."""
        await self._react(payload)

    async def _react(self, payload: discord.RawReactionActionEvent) -> None:
        guild = self.bot.get_guild(payload.guild_id) if payload.guild_id else None
        if guild is None:
            return
        board = await self._board_for(guild, payload)
        if board is None:
            return
        try:
            if payload.event_type == "REACTION_ADD":
                author_id = payload.message_author_id or await self._author_of(guild, payload)
                if author_id is None:
                    return
                decision = await self.db.starboard.add_star(
                    guild.id,
                    message_id=payload.message_id,
                    channel_id=payload.channel_id,
                    author_id=author_id,
                    user_id=payload.user_id,
                )
            else:
                decision = await self.db.starboard.remove_star(
                    guild.id,
                    message_id=payload.message_id,
                    channel_id=payload.channel_id,
                    user_id=payload.user_id,
                )
        except StarboardNotConfiguredError:
            return  # turned off since
        starboard = guild.get_channel(board.channel_id)
        if not isinstance(starboard, discord.TextChannel):
            log.warning("guild %s: starboard channel %s is missing", guild.id, board.channel_id)
            return
        if decision.action is StarAction.POST:
            await self._post(guild, starboard, board, decision)
        elif decision.action is StarAction.UPDATE:
            await self._edit(starboard, board, decision)
        elif decision.action is StarAction.REMOVE:
            await self._delete(starboard, decision)

    async def _board_for(
        self, guild: discord.Guild, payload: discord.RawReactionActionEvent
    ) -> StarboardSchema | None:
        """The guild's starboard when this reaction is a star that may count, else None."""
        user = payload.member or guild.get_member(payload.user_id)
        if user is not None and user.bot:
            return None
        board = await self.db.starboard.get(guild.id)
        if board is None or not same_emoji(board.emoji, payload.emoji):
            return None
        if payload.event_type == "REACTION_ADD" and isinstance(user, discord.Member):
            channel = guild.get_channel_or_thread(payload.channel_id)
            where = channel or discord.Object(payload.channel_id)
            if await self.outcome(user, where) is not Outcome.ALLOWED:
                return None  # the module's rules deny or ignore this member or channel
        if payload.channel_id == board.channel_id:
            entry = await self.db.starboard.get_message(guild.id, payload.message_id)
            if entry is None or entry.starboard_message_id != payload.message_id:
                return None  # not a copy: messages of the starboard itself are not starred
        return board

    async def _author_of(
        self, guild: discord.Guild, payload: discord.RawReactionActionEvent
    ) -> int | None:
        """The author of the reacted-to message, fetched (None when it cannot be)."""
        channel = guild.get_channel_or_thread(payload.channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            return None
        try:
            return (await channel.fetch_message(payload.message_id)).author.id
        except discord.HTTPException:
            return None

    async def _post(
        self,
        guild: discord.Guild,
        starboard: discord.TextChannel,
        board: StarboardSchema,
        decision: StarDecision,
    ) -> None:
        """Post the copy of the starred message and record it."""
        source = guild.get_channel_or_thread(decision.channel_id)
        if not isinstance(source, discord.abc.Messageable):
            return
        try:
            original = await source.fetch_message(decision.message_id)
            copy = await starboard.send(
                header(board.emoji, decision.stars, decision.channel_id),
                embed=copy_embed(original),
                allowed_mentions=NO_MENTIONS,
            )
        except discord.NotFound:
            return  # the message was deleted meanwhile
        except discord.HTTPException as exc:
            log.warning("guild %s: cannot post on the starboard: %s", guild.id, exc)
            return
        try:
            entry = await self.db.starboard.set_copy(guild.id, decision.message_id, copy.id)
        except StarboardMessageNotFoundError:
            # The entry went while posting (starboard removed, author's data erased).
            await _delete_quietly(copy)
            return
        if entry.stars != decision.stars:  # stars came or went while posting
            try:
                await copy.edit(content=header(board.emoji, entry.stars, decision.channel_id))
            except discord.HTTPException as exc:
                log.warning("guild %s: cannot edit a starboard copy: %s", guild.id, exc)

    async def _edit(
        self,
        starboard: discord.TextChannel,
        board: StarboardSchema,
        decision: StarDecision,
    ) -> None:
        """Show the new count on the copy (a copy deleted by hand is left alone)."""
        assert decision.starboard_message_id is not None
        try:
            copy = await starboard.fetch_message(decision.starboard_message_id)
            await copy.edit(content=header(board.emoji, decision.stars, decision.channel_id))
        except discord.NotFound:
            return
        except discord.HTTPException as exc:
            log.warning("guild %s: cannot edit a starboard copy: %s", starboard.guild.id, exc)

    async def _delete(self, starboard: discord.TextChannel, decision: StarDecision) -> None:
        """Delete the copy (already gone is fine)."""
        assert decision.starboard_message_id is not None
        await _delete_quietly(starboard.get_partial_message(decision.starboard_message_id))


async def _delete_quietly(message: discord.Message | discord.PartialMessage) -> None:
    """Delete ``message``; one already gone or out of reach is logged, not raised."""
    try:
        await message.delete()
    except discord.NotFound:
        return
    except discord.HTTPException as exc:
        log.warning("cannot delete starboard copy %s: %s", message.id, exc)


setup, teardown = cog_setup(Starboard)
