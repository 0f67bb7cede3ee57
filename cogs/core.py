"""What every botdata cog shares: the handle, checks, error replies, safe sending, converters.

The handle
    Each cog extension calls :func:`acquire` in its ``setup``: it reuses ``bot.botdata`` when the
    bot already holds an open :class:`botdata.Database` there, and otherwise connects from the
    settings and stores the handle in ``bot.botdata``. :func:`release` (in ``teardown``) closes
    the handle only when the extensions opened it and the last of them is unloaded.

Checks
    Every command of a :class:`BotdataCog` first passes the guild's access rules
    (``db.permissions.is_allowed``: an IGNORE rule makes the bot stay silent, a BLACKLIST or an
    unmatched whitelist gets a short refusal) and the per-member rate limit
    (``db.rate_limits``). :func:`level` and :func:`level_or_permissions` gate commands by the
    guild's permission levels; :func:`ensure_can_moderate` enforces role hierarchy.

Replies
    Bad input, a missing permission or a botdata error gets a short reply; unexpected errors are
    logged with their context and the member sees a one-line apology. Everything is sent with
    :data:`SAFE_MENTIONS`: members can be pinged, ``@everyone``, ``@here`` and roles cannot.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

import discord
from discord.ext import commands

import botdata
from botdata.errors import BotdataError
from botdata.managers.permissions import Outcome

log = logging.getLogger("cogs")

#: Mentions the bot's messages may make: members only.
SAFE_MENTIONS = discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False)
#: For text members wrote (snippets, reminders, AFK reasons): pings nobody.
NO_MENTIONS = discord.AllowedMentions.none()

# Extensions that share a handle they opened themselves, per bot.
_opened: weakref.WeakKeyDictionary[commands.Bot, int] = weakref.WeakKeyDictionary()

T = TypeVar("T")


async def acquire(bot: commands.Bot) -> botdata.Database:
    """The bot's botdata handle: ``bot.botdata`` if open, else a new one stored there.

    Raises whatever :func:`botdata.connect` raises (bad settings, unreachable database).
    """
    db: botdata.Database | None = getattr(bot, "botdata", None)
    if db is not None and not db.closed and bot not in _opened:
        return db  # the bot's own handle: never closed by the extensions
    if db is None or db.closed:
        db = await botdata.connect()
        bot.botdata = db  # type: ignore[attr-defined]
        _opened[bot] = 0
    _opened[bot] += 1
    return db


async def release(bot: commands.Bot) -> None:
    """Undo one :func:`acquire`; the last extension out closes a handle the extensions opened."""
    if bot not in _opened:
        return
    _opened[bot] -= 1
    if _opened[bot] == 0:
        del _opened[bot]
        await bot.botdata.close()  # type: ignore[attr-defined]
        del bot.botdata  # type: ignore[attr-defined]


async def guild_prefix(bot: commands.Bot, message: discord.Message) -> list[str]:
    """``command_prefix`` for a bot: the guild's prefix (or the default) or a mention of it."""
    db: botdata.Database = bot.botdata  # type: ignore[attr-defined]
    prefix = await db.guilds.prefix(message.guild.id if message.guild else None)
    return commands.when_mentioned_or(prefix)(bot, message)


async def starts_with_prefix(bot: commands.Bot, message: discord.Message) -> bool:
    """Whether ``message`` is a prefix followed by a word: a command or a snippet's short form.

    The cheap test for ``on_message`` listeners (no Context is built): the prefix lookup is
    served from memory.
    """
    prefixes = await bot.get_prefix(message)
    content = message.content
    for prefix in [prefixes] if isinstance(prefixes, str) else prefixes:
        if content.startswith(prefix) and content[len(prefix) : len(prefix) + 1].strip():
            return True
    return False


# Errors ------------------------------------------------------------------------------------


class Ignored(commands.CheckFailure):
    """An IGNORE rule matched: the bot says nothing."""


class RateLimited(commands.CheckFailure):
    """The member ran too many commands in the window."""


class MissingLevel(commands.CheckFailure):
    """The member's permission level is below the command's."""


class CannotModerate(commands.CheckFailure):
    """Role hierarchy forbids acting on the target."""


# Checks ------------------------------------------------------------------------------------


def _db(ctx: commands.Context) -> botdata.Database:
    return ctx.bot.botdata  # type: ignore[no-any-return]


async def level_of(ctx: commands.Context) -> int:
    """The author's permission level in the guild of ``ctx`` (owner 7)."""
    assert ctx.guild is not None
    assert isinstance(ctx.author, discord.Member)
    return await _db(ctx).permissions.level_of(
        ctx.guild.id,
        [role.id for role in ctx.author.roles],
        is_owner=ctx.guild.owner_id == ctx.author.id,
    )


def level(required: int) -> Callable[[T], T]:
    """Check: the author's permission level is at least ``required`` (guild only)."""

    async def predicate(ctx: commands.Context) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        if await level_of(ctx) < required:
            raise MissingLevel(f"You need permission level {required} for this.")
        return True

    return commands.check(predicate)


def level_or_permissions(required: int, **perms: bool) -> Callable[[T], T]:
    """Check: permission level ``required`` or the Discord permissions ``perms`` (guild only)."""
    by_permissions = commands.has_guild_permissions(**perms).predicate

    async def predicate(ctx: commands.Context) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage()
        if await level_of(ctx) >= required:
            return True
        try:
            return await by_permissions(ctx)
        except commands.MissingPermissions:
            names = ", ".join(p.replace("_", " ") for p in perms)
            raise MissingLevel(
                f"You need permission level {required} or the {names} permission."
            ) from None

    return commands.check(predicate)


def ensure_can_moderate(ctx: commands.Context, target: discord.abc.User) -> None:
    """Raise :class:`CannotModerate` unless the author may act on ``target``.

    Nobody moderates themselves, the guild owner, the bot, or a member whose top role is at or
    above their own (the owner excepted) or at or above the bot's.
    """
    guild = ctx.guild
    assert guild is not None
    assert isinstance(ctx.author, discord.Member)
    if target.id == ctx.author.id:
        raise CannotModerate("You cannot moderate yourself.")
    if target.id == guild.owner_id:
        raise CannotModerate("You cannot moderate the server owner.")
    if target.id == guild.me.id:
        raise CannotModerate("I will not moderate myself.")
    if not isinstance(target, discord.Member):
        return  # not in the guild: no roles to compare
    if ctx.author.id != guild.owner_id and target.top_role >= ctx.author.top_role:
        raise CannotModerate(f"{target} has a role at or above yours.")
    if target.top_role >= guild.me.top_role:
        raise CannotModerate(f"{target} has a role at or above mine.")


# Converters --------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)\s*([wdhms])", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
#: The longest duration a command accepts.
MAX_DURATION = timedelta(days=365 * 5)


def parse_duration(text: str) -> timedelta:
    """``"10m"``, ``"2h30m"``, ``"1d"``, ``"1w2d"`` -> a timedelta.

    Raises :class:`commands.BadArgument` for anything else, zero, or more than five years.
    """
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts).lower() != compact.lower():
        raise commands.BadArgument(f"`{text}` is not a duration like 10m, 2h30m or 1d.")
    delta = sum((timedelta(**{_UNITS[u.lower()]: int(n)}) for n, u in parts), timedelta())
    if delta <= timedelta(0) or delta > MAX_DURATION:
        raise commands.BadArgument("A duration must be more than 0 and at most 5 years.")
    return delta


class Duration(commands.Converter[timedelta]):
    """Command argument converter for :func:`parse_duration`."""

    async def convert(self, ctx: commands.Context, argument: str) -> timedelta:
        return parse_duration(argument)


def human(delta: timedelta) -> str:
    """``timedelta(hours=2, minutes=30)`` -> ``"2h 30m"``."""
    seconds = int(delta.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(out) or "0s"


# The base cog ------------------------------------------------------------------------------


class BotdataCog(commands.Cog):
    """Base of botdata's cogs: access rules, rate limit and error replies for every command."""

    def __init__(self, bot: commands.Bot, db: botdata.Database) -> None:
        self.bot = bot
        self.db = db

    @property
    def module(self) -> str:
        """The name access rules use for this cog (its name in lower case)."""
        return self.qualified_name.lower()

    async def cog_check(self, ctx: commands.Context) -> bool:  # type: ignore[override]
        if ctx.guild is not None and isinstance(ctx.author, discord.Member):
            channel = ctx.channel
            decision = await self.db.permissions.is_allowed(
                ctx.guild.id,
                command=_root_name(ctx.command),
                module=self.module,
                user_id=ctx.author.id,
                role_ids=[role.id for role in ctx.author.roles],
                channel_id=channel.id,
                category_id=getattr(channel, "category_id", None),
            )
            if decision.outcome is Outcome.IGNORED:
                raise Ignored()
            if decision.outcome is Outcome.DENIED:
                raise commands.CheckFailure("That command is not allowed for you here.")
        if await self.db.rate_limits.hit(ctx.author.id):
            raise RateLimited("You are running commands too fast; wait a little.")
        return True

    async def cog_command_error(self, ctx: commands.Context, error: Exception) -> None:  # type: ignore[override]
        message = error_message(ctx, error)
        if message is not None:
            await self.send(ctx, message, ephemeral=True)

    async def send(
        self,
        ctx: commands.Context,
        content: str | None = None,
        *,
        mentions: discord.AllowedMentions = SAFE_MENTIONS,
        **kwargs: Any,
    ) -> discord.Message | None:
        """Reply in the context's channel with ``mentions`` limited (members only by default)."""
        return await ctx.send(content, allowed_mentions=mentions, **kwargs)


def _root_name(command: commands.Command | None) -> str:
    # Access rules name top-level commands; a rule covers the command's subcommands.
    if command is None:
        return ""
    return (command.root_parent or command).qualified_name


def error_message(ctx: commands.Context, error: Exception) -> str | None:
    """The short reply for ``error`` raised by a command, or None to say nothing.

    Unexpected errors are logged here, with the command, guild, channel and author.
    """
    while isinstance(error, (commands.CommandInvokeError, commands.HybridCommandError)):
        error = error.original  # type: ignore[assignment]
    if isinstance(error, discord.app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, (Ignored, commands.CommandNotFound)):
        return None
    if isinstance(error, BotdataError):
        return str(error)
    if isinstance(error, commands.MissingRequiredArgument):
        return f"Missing `{error.param.name}`. Usage: `{_usage(ctx)}`"
    if isinstance(error, commands.UserInputError):
        return f"{error} Usage: `{_usage(ctx)}`"
    if isinstance(error, commands.CheckFailure):
        return str(error) or "You cannot use that command here."
    if isinstance(error, discord.Forbidden):
        return "I lack the Discord permission to do that."
    log.error(
        "command %s failed (guild %s, channel %s, author %s, message %r)",
        ctx.command.qualified_name if ctx.command else "?",
        ctx.guild.id if ctx.guild else None,
        ctx.channel.id,
        ctx.author.id,
        ctx.message.content if ctx.message else None,
        exc_info=error,
    )
    return "Something went wrong; it has been logged."


def _usage(ctx: commands.Context) -> str:
    command = ctx.command
    if command is None:
        return ctx.invoked_with or ""
    return f"{ctx.clean_prefix}{command.qualified_name} {command.signature}".strip()


def cog_setup(
    cog: Callable[[commands.Bot, botdata.Database], BotdataCog],
) -> tuple[
    Callable[[commands.Bot], Coroutine[Any, Any, None]],
    Callable[[commands.Bot], Coroutine[Any, Any, None]],
]:
    """The ``setup`` and ``teardown`` of an extension holding one cog class."""

    async def setup(bot: commands.Bot) -> None:
        db = await acquire(bot)
        try:
            await bot.add_cog(cog(bot, db))
        except BaseException:
            await release(bot)
            raise

    async def teardown(bot: commands.Bot) -> None:
        await release(bot)

    return setup, teardown
