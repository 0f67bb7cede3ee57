"""What every botdata cog shares: the handle, checks, error replies, safe sending, converters.

The handle
    Each cog extension calls :func:`acquire` in its ``setup``: it reuses ``bot.botdata`` when the
    bot already holds an open :class:`botdata.Database` there, and otherwise connects from the
    settings and stores the handle in ``bot.botdata``. :func:`release` (in ``teardown``) closes the
    handle only when the extensions opened it and the last of them is unloaded. The count of
    extensions sharing such a handle is kept on the bot, not in this module: unloading the
    ``botdata_cogs`` package drops this module from ``sys.modules`` and cogs loaded afterwards
    import it anew. An extension whose setup fails is released once, by its ``teardown`` (discord.py
    calls it after a failed ``setup``).

Checks
    Every command of a :class:`BotdataCog` first passes the guild's access rules
    (``db.permissions.is_allowed`` with the command and the cog's :attr:`~BotdataCog.module`: an
    IGNORE rule makes the bot stay silent, a BLACKLIST or an unmatched whitelist gets a short
    refusal) and the per-member rate limit (``db.rate_limits``). The listeners a cog has for
    members (XP per message, AFK notices, stars, the snippet short form) consult the module's
    rules for that member and channel through :meth:`BotdataCog.outcome` and do nothing when
    they deny or ignore. Two exemptions:

    - a cog with :attr:`~BotdataCog.admins_bypass_rules` (the permissions cog) ignores rules
      for the guild owner and members with Administrator, so no rule can lock them out of
      managing rules;
    - staff are not rate limited: the guild owner, members with any of
      :data:`MODERATION_PERMISSIONS`, and members of permission level :data:`MODERATOR_LEVEL`
      or more (:func:`is_staff`). The limit is for members.

    :func:`level` and :func:`level_or_permissions` gate commands by the guild's permission
    levels; :func:`ensure_can_moderate` enforces role hierarchy.

Types
    :func:`handle` reads ``bot.botdata`` typed. Guild-only commands take a :class:`GuildContext`
    (guild set, author a member). :func:`hybrid_command`, :func:`hybrid_group` and
    :meth:`HybridGroup.command` are discord.py's hybrid decorators typed so that mypy keeps a
    command's type (discord.py types them for pyright); the checks return a :class:`Check`.

Durations
    :func:`parse_duration` reads ``10m``, ``2h30m``, ``1d``, ``1w``... up to
    :data:`MAX_DURATION`; its numbers are bounded before any ``timedelta`` is built, so a huge
    number gets the same refusal as six years. :class:`Duration` is the converter of a required
    duration. :class:`OptionalDuration` is an optional duration before a reason
    (``jail @m [duration] [reason]``): a word that *looks like a duration* - its first
    character, after an optional ``+`` or ``-``, is an ASCII digit (``2000d``, ``0s``, ``10x``,
    ``5``, ``2nd``) - must parse or the command is refused; any other word starts the reason.
    (``Optional[Duration]`` cannot do this: discord.py turns any conversion error of an
    ``Optional`` into None and gives the word to the reason.) As a slash option the duration is
    always read as one.

Replies
    Bad input, a missing permission or a botdata error gets a short reply that quotes member input
    only as an excerpt (:func:`~botdata_cogs.limits.excerpt`) and pings nobody; a database that is
    down or busy gets a "try again" reply that names nothing of it (both are logged); unexpected
    errors are logged with their context and the member sees a one-line apology. Everything else is
    sent with :data:`SAFE_MENTIONS` (members can be pinged, ``@everyone``, ``@here`` and roles
    cannot) and fitted into Discord's limits (:meth:`BotdataCog.send`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar, Concatenate, ParamSpec, Protocol, TypeGuard, TypeVar, cast

import discord
from discord.ext import commands
from discord.utils import MISSING

import botdata
from botdata.errors import BotdataError, DatabaseUnavailableError
from botdata.managers.permissions import Outcome

from . import limits

log = logging.getLogger(__package__)  # the package's logger: botdata_cogs

#: Mentions the bot's messages may make: members only.
SAFE_MENTIONS = discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False)
#: For text members wrote (snippets, reminders, AFK reasons) and refusals: pings nobody.
NO_MENTIONS = discord.AllowedMentions.none()
#: The permission level from which a member is staff (not rate limited).
MODERATOR_LEVEL = 2
#: Discord permissions any one of which makes a member staff (not rate limited).
MODERATION_PERMISSIONS = discord.Permissions(
    administrator=True,
    manage_guild=True,
    manage_roles=True,
    ban_members=True,
    kick_members=True,
    moderate_members=True,
    manage_messages=True,
    manage_nicknames=True,
)

#: The bot attribute holding the botdata handle (read it with :func:`handle`).
HANDLE = "botdata"
# The bot attribute counting the extensions that share a handle they opened themselves.
_SHARING = "_botdata_extensions"

T = TypeVar("T")
P = ParamSpec("P")
CogT = TypeVar("CogT", bound=commands.Cog)
ContextT = TypeVar("ContextT", bound="commands.Context[Any]")


class NoHandleError(LookupError):
    """The bot holds no botdata handle: no botdata extension is loaded and the bot set none."""


def handle(bot: commands.Bot) -> botdata.Database:
    """The bot's botdata handle (``bot.botdata``), typed.

    Raises :class:`NoHandleError` when the bot holds none.
    """
    db = getattr(bot, HANDLE, None)
    if not isinstance(db, botdata.Database):
        raise NoHandleError(f"the bot has no botdata handle in bot.{HANDLE}")
    return db


async def acquire(bot: commands.Bot) -> botdata.Database:
    """The bot's botdata handle: ``bot.botdata`` if open, else a new one stored there.

    Raises whatever :func:`botdata.connect` raises (bad settings, unreachable database).
    """
    db: botdata.Database | None = getattr(bot, HANDLE, None)
    sharing: int = getattr(bot, _SHARING, 0)
    if db is not None and not db.closed and not sharing:
        return db  # the bot's own handle: never closed by the extensions
    if db is None or db.closed:
        db = await botdata.connect()
        setattr(bot, HANDLE, db)
        sharing = 0
    setattr(bot, _SHARING, sharing + 1)
    return db


async def release(bot: commands.Bot) -> None:
    """Undo one :func:`acquire`; the last extension out closes a handle the extensions opened."""
    sharing: int = getattr(bot, _SHARING, 0)
    if sharing > 1:
        setattr(bot, _SHARING, sharing - 1)
    elif sharing == 1:
        delattr(bot, _SHARING)
        await handle(bot).close()
        delattr(bot, HANDLE)


async def guild_prefix(bot: commands.Bot, message: discord.Message) -> list[str]:
    """``command_prefix`` for a bot: the guild's prefix (or the default) or a mention of it.

    Raises :class:`NoHandleError` before a botdata extension is loaded (and the bot set no handle).
    """
    prefix = await handle(bot).guilds.prefix(message.guild.id if message.guild else None)
    return commands.when_mentioned_or(prefix)(bot, message)


# Types -------------------------------------------------------------------------------------


class GuildContext(commands.Context[commands.Bot]):
    """The context of a command that runs only in a guild (``guild_only()``, :func:`level`,
    :func:`level_or_permissions`): its guild is set and its author is a member.

    A type for annotations (the bot builds plain :class:`commands.Context` objects); a listener
    that builds a context itself narrows it with :func:`in_guild`.
    """

    guild: discord.Guild
    author: discord.Member
    me: discord.Member


def in_guild(ctx: commands.Context[Any]) -> TypeGuard[GuildContext]:
    """Whether ``ctx`` is in a guild with a member as its author (a :class:`GuildContext`)."""
    return ctx.guild is not None and isinstance(ctx.author, discord.Member)


class Check(Protocol):
    """What a check decorator returns: it gives back the command it decorates, type unchanged
    (like discord.py's own ``commands.check``)."""

    def __call__(self, command: T, /) -> T: ...


# discord.py types its hybrid decorators for pyright: under mypy the type variables of
# ``hybrid_command()``, ``hybrid_group()`` and ``group.command()`` are solved when the decorator
# is made, not when it is applied, so every hybrid command is an error (discord.py issue #9788).
# These protocols are the same decorators with their type variables on ``__call__``.


class CommandDecorator(Protocol):
    """What :func:`hybrid_command` and :meth:`HybridGroup.command` return."""

    def __call__(
        self, func: Callable[Concatenate[CogT, ContextT, P], Coroutine[Any, Any, T]], /
    ) -> commands.HybridCommand[CogT, P, T]: ...


class GroupDecorator(Protocol):
    """What :func:`hybrid_group` returns."""

    def __call__(
        self, func: Callable[Concatenate[CogT, ContextT, P], Coroutine[Any, Any, T]], /
    ) -> HybridGroup[CogT, P, T]: ...


class HybridGroup(commands.HybridGroup[CogT, P, T]):
    """discord.py's ``HybridGroup`` whose ``command()`` decorator type-checks under mypy."""

    def command(  # type: ignore[override]  # only the return type differs: see CommandDecorator
        self,
        name: str | discord.app_commands.locale_str = MISSING,
        *args: Any,
        with_app_command: bool = True,
        **kwargs: Any,
    ) -> CommandDecorator:
        """A subcommand decorator: :meth:`commands.HybridGroup.command`, typed for mypy."""
        decorator = super().command(name, *args, with_app_command=with_app_command, **kwargs)
        return cast(CommandDecorator, decorator)


def hybrid_command(name: str = MISSING, **attrs: Any) -> CommandDecorator:
    """:func:`commands.hybrid_command`, typed so that mypy keeps the command's type."""
    return cast(CommandDecorator, commands.hybrid_command(name, **attrs))


def hybrid_group(name: str = MISSING, **attrs: Any) -> GroupDecorator:
    """:func:`commands.hybrid_group` making a :class:`HybridGroup`, typed for mypy."""

    def decorator(func: Callable[..., Coroutine[Any, Any, Any]]) -> HybridGroup[Any, ..., Any]:
        if isinstance(func, commands.Command):
            raise TypeError("Callback is already a command.")
        return HybridGroup(func, name=name, **attrs)

    return cast(GroupDecorator, decorator)


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


async def level_of(ctx: GuildContext) -> int:
    """The author's permission level in the guild of ``ctx`` (owner 7)."""
    return await handle(ctx.bot).permissions.level_of(
        ctx.guild.id,
        [role.id for role in ctx.author.roles],
        is_owner=ctx.guild.owner_id == ctx.author.id,
    )


def level(required: int) -> Check:
    """Check: the author's permission level is at least ``required`` (guild only: elsewhere
    :class:`commands.NoPrivateMessage`)."""

    async def predicate(ctx: commands.Context[Any]) -> bool:
        if not in_guild(ctx):
            raise commands.NoPrivateMessage()
        if await level_of(ctx) < required:
            raise MissingLevel(f"You need permission level {required} for this.")
        return True

    return commands.check(predicate)


def level_or_permissions(required: int, **perms: bool) -> Check:
    """Check: permission level ``required`` or the Discord permissions ``perms`` (guild only:
    elsewhere :class:`commands.NoPrivateMessage`)."""
    by_permissions = commands.has_guild_permissions(**perms).predicate

    async def predicate(ctx: commands.Context[Any]) -> bool:
        if not in_guild(ctx):
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


async def is_staff(ctx: commands.Context[Any]) -> bool:
    """Whether the author is staff in the guild of ``ctx``: the owner, a member with any of
    :data:`MODERATION_PERMISSIONS`, or of permission level :data:`MODERATOR_LEVEL` or more.

    False outside a guild.
    """
    if not in_guild(ctx):
        return False
    if ctx.author.guild_permissions.value & MODERATION_PERMISSIONS.value:  # the owner has all
        return True
    return await level_of(ctx) >= MODERATOR_LEVEL


def ensure_can_moderate(ctx: GuildContext, target: discord.abc.User) -> None:
    """Raise :class:`CannotModerate` unless the author may act on ``target``.

    Nobody moderates themselves, the guild owner, the bot, or a member whose top role is at or
    above their own (the owner excepted) or at or above the bot's.
    """
    guild = ctx.guild
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

_DURATION = re.compile(r"([0-9]+)\s*([wdhms])", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
#: The longest duration a command accepts.
MAX_DURATION = timedelta(days=365 * 5)
# A number with more significant digits is over MAX_DURATION whatever its unit.
_MAX_DIGITS = len(str(int(MAX_DURATION.total_seconds())))
# A word that looks like a duration: an ASCII digit first, after an optional sign.
_DURATION_LIKE = re.compile(r"[+-]?[0-9]")


def parse_duration(text: str) -> timedelta:
    """``"10m"``, ``"2h30m"``, ``"1d"``, ``"1w2d"`` -> a timedelta.

    Raises :class:`commands.BadArgument` for anything else, zero, or more than
    :data:`MAX_DURATION` (numbers of any size: they are bounded before a timedelta is built).
    """
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts).lower() != compact.lower():
        raise commands.BadArgument(
            f"`{limits.excerpt(text)}` is not a duration like 10m, 2h30m or 1d."
        )
    too_long = commands.BadArgument("A duration must be more than 0 and at most 5 years.")
    if any(len(number.lstrip("0")) > _MAX_DIGITS for number, _ in parts):
        raise too_long
    seconds = sum(int(number) * _UNIT_SECONDS[unit.lower()] for number, unit in parts)
    if not 0 < seconds <= MAX_DURATION.total_seconds():
        raise too_long
    return timedelta(seconds=seconds)


def looks_like_duration(word: str) -> bool:
    """Whether ``word`` looks like a duration: its first character, after an optional ``+``
    or ``-``, is an ASCII digit (``10m``, ``2000d``, ``0s``, ``5``, ``2nd``)."""
    return _DURATION_LIKE.match(word) is not None


class Duration(commands.Converter[timedelta]):
    """Command argument converter for :func:`parse_duration`."""

    async def convert(self, ctx: commands.Context, argument: str) -> timedelta:
        return parse_duration(argument)


class OptionalDuration(commands.Converter[timedelta | None]):
    """An optional duration before a reason: ``Annotated[timedelta | None, OptionalDuration]``
    with the default None, followed by a keyword-only reason.

    A word that :func:`looks_like_duration` must parse (else :class:`commands.BadArgument`);
    any other word is given back to the command's parser (``ctx.view.undo()``: the reason
    starts with it) and the duration is None. As a slash option the value is always parsed.
    """

    async def convert(self, ctx: commands.Context, argument: str) -> timedelta | None:
        if ctx.interaction is not None or looks_like_duration(argument):
            return parse_duration(argument)
        # discord.py's transform() set view.previous to the start of this word.
        ctx.view.undo()
        return None


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


def clock_loop(
    cog: BotdataCog, interval: float, run: Callable[[datetime], Awaitable[object]], what: str
) -> asyncio.Task[None]:
    """Start a task that, once the bot is ready, calls ``run(now)`` every ``interval`` seconds
    of the handle's clock (``db.clock``, read at each pass and sleep, so a test's
    :class:`~botdata.ManualClock` drives it with ``advance``). A pass that raises is logged
    (``what`` names it) and the loop goes on. Returns the task: cancel it in ``cog_unload``."""

    async def loop() -> None:
        await cog.bot.wait_until_ready()
        task = asyncio.current_task()
        assert task is not None
        cog.db.clock.drive(task)  # an advance() waits for its passes from now on
        while True:
            try:
                await run(cog.db.clock.now())
            except Exception:
                log.exception("%s failed", what)
            await cog.db.clock.sleep(interval)

    return asyncio.create_task(loop(), name=f"botdata-{what.replace(' ', '-')}")


class BotdataCog(commands.Cog):
    """Base of botdata's cogs: access rules, rate limit and error replies for every command."""

    #: Whether the guild owner and members with Administrator are not subject to access rules
    #: for this cog's commands (the permissions cog: nobody locks them out of managing rules).
    admins_bypass_rules: ClassVar[bool] = False

    def __init__(self, bot: commands.Bot, db: botdata.Database) -> None:
        self.bot = bot
        self.db = db

    @property
    def module(self) -> str:
        """The name access rules use for this cog (its name in lower case)."""
        return self.qualified_name.lower()

    async def outcome(
        self,
        member: discord.Member,
        channel: discord.abc.Snowflake,
        command: commands.Command | None = None,
    ) -> Outcome:
        """What the guild's access rules say about ``member`` using this cog's module in
        ``channel`` (a channel, thread or ``discord.Object``): with ``command`` the rules of
        that command (its top-level command) count too, without it only the module's.

        Served from the hot cache; a guild without rules costs a dict lookup. Raises the errors
        of ``db.permissions.is_allowed``.
        """
        decision = await self.db.permissions.is_allowed(
            member.guild.id,
            command=_root_name(command) if command is not None else None,
            module=self.module,
            user_id=member.id,
            role_ids=_role_ids(member),
            channel_id=channel.id,
            category_id=getattr(channel, "category_id", None),
        )
        return decision.outcome

    async def cog_check(self, ctx: commands.Context) -> bool:
        author = ctx.author
        if ctx.guild is not None and isinstance(author, discord.Member):
            exempt = self.admins_bypass_rules and author.guild_permissions.administrator
            outcome = (
                Outcome.ALLOWED if exempt else await self.outcome(author, ctx.channel, ctx.command)
            )
            if outcome is Outcome.IGNORED:
                raise Ignored()
            if outcome is Outcome.DENIED:
                raise commands.CheckFailure("That command is not allowed for you here.")
        if not await is_staff(ctx) and await self.db.rate_limits.hit(author.id):
            raise RateLimited("You are running commands too fast; wait a little.")
        return True

    async def cog_command_error(self, ctx: commands.Context, error: Exception) -> None:
        message = error_message(ctx, error)
        if message is not None:
            await self.send(ctx, message, mentions=NO_MENTIONS, ephemeral=True)

    async def send(
        self,
        ctx: commands.Context,
        content: str | None = None,
        *,
        mentions: discord.AllowedMentions = SAFE_MENTIONS,
        **kwargs: Any,
    ) -> discord.Message | None:
        """Reply in the context's channel with ``mentions`` limited (members only by default),
        the content and the embeds (``embed=``/``embeds=``, changed in place) fitted into
        Discord's limits (:mod:`botdata_cogs.limits`). Returns what ``ctx.send`` returns."""
        if content is not None:
            content = limits.fit(content, limits.CONTENT)
        for embed in [kwargs.get("embed"), *kwargs.get("embeds", ())]:
            if embed is not None:
                limits.fit_embed(embed)
        return await ctx.send(content, allowed_mentions=mentions, **kwargs)


def _role_ids(member: discord.Member) -> Iterator[int]:
    # Lazy: only a guild with rules for the module reads them (member.roles sorts the roles).
    for role in member.roles:
        yield role.id


def _root_name(command: commands.Command | None) -> str:
    # Access rules name top-level commands; a rule covers the command's subcommands.
    if command is None:
        return ""
    return (command.root_parent or command).qualified_name


def error_message(ctx: commands.Context, error: Exception) -> str | None:
    """The short reply for ``error`` raised by a command, or None to say nothing.

    Member input in the reply is quoted as an excerpt and the whole reply is at most
    :data:`botdata_cogs.limits.REFUSAL` characters. A database that is down or busy and unexpected
    errors are logged here, with the command, guild, channel and author.
    """
    while isinstance(error, (commands.CommandInvokeError, commands.HybridCommandError)):
        error = error.original
    if isinstance(error, discord.app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, (Ignored, commands.CommandNotFound)):
        return None
    if isinstance(error, DatabaseUnavailableError):
        _log_failure(ctx, error, logging.WARNING)
        return "The database is unavailable or busy right now; try again in a moment."
    if isinstance(error, BotdataError):
        message = str(error)
    elif isinstance(error, commands.MissingRequiredArgument):
        message = f"Missing `{error.param.name}`. Usage: `{_usage(ctx)}`"
    elif isinstance(error, commands.UserInputError):
        message = f"{error} Usage: `{_usage(ctx)}`"
    elif isinstance(error, commands.CheckFailure):
        message = str(error) or "You cannot use that command here."
    elif isinstance(error, discord.Forbidden):
        message = "I lack the Discord permission to do that."
    else:
        _log_failure(ctx, error, logging.ERROR)
        return "Something went wrong; it has been logged."
    argument = ctx.current_argument
    if argument and limits.length(argument) > limits.EXCERPT:
        # discord.py's and botdata's messages quote the argument whole.
        message = message.replace(argument, limits.excerpt(argument))
    return limits.fit(message, limits.REFUSAL)


def _log_failure(ctx: commands.Context, error: BaseException, level: int) -> None:
    log.log(
        level,
        "command %s failed (guild %s, channel %s, author %s, message %r)",
        ctx.command.qualified_name if ctx.command else "?",
        ctx.guild.id if ctx.guild else None,
        ctx.channel.id,
        ctx.author.id,
        ctx.message.content if ctx.message else None,
        exc_info=error,
    )


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
    """The ``setup`` and ``teardown`` of an extension holding one cog class.

    ``teardown`` releases the handle only for a bot whose ``setup`` acquired it: once after a
    failed ``add_cog`` (discord.py calls ``teardown`` then), never after a failed connect.
    """
    holders: weakref.WeakSet[commands.Bot] = weakref.WeakSet()

    async def setup(bot: commands.Bot) -> None:
        db = await acquire(bot)
        holders.add(bot)
        await bot.add_cog(cog(bot, db))

    async def teardown(bot: commands.Bot) -> None:
        if bot in holders:
            holders.discard(bot)
            await release(bot)

    return setup, teardown
