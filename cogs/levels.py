"""Levels: XP for talking, level-up messages, reward roles, ranks and the leaderboard.

Commands: ``rank [@member]`` and ``leaderboard [page]`` (everyone); level 5 or Manage Server:
``levels set @member <xp>``, ``levels setlevel @member <level>``, ``levels reset @member``,
``levels reset all confirm`` (everyone's XP), ``levels blacklist @member``,
``levels unblacklist @member``, ``levels settings`` (show) and ``levels settings <name>
<value>``, the names being :data:`SETTINGS`:

- ``xp <min>-<max>``: XP per message; ``cooldown <seconds>``; ``curve <multiplier>`` (2: each
  level needs twice the XP)
- ``noxpchannel add|remove <channel>``, ``noxprole add|remove <role>``: earn nothing there
- ``multiplier <role> <factor|remove>``: XP factor of a role (a member gets their highest)
- ``reward <level> <role|remove>``: role given on reaching the level
- ``stacking on|off``: keep every reward role reached, or only the highest
- ``levelupchannel <channel|none>``: where level-up messages go (none: where the member talked)

Values are checked by :class:`~botdata.managers.xp.LevelSettings` before anything is stored.

Messages
    Every guild message of a member (not a bot, not a command: no ``<prefix><word>``) goes to
    ``db.levels.grant_message_xp`` with the member's roles and the channel (a thread counts as
    its parent channel), which applies the cooldown, blacklist and no-XP channels and roles.
    Access rules for the ``levels`` module apply too: a module rule that denies or ignores it
    for the member or the channel means no XP there (and no level-up messages). The listener
    costs one prefix lookup and one rules lookup (hot cache; a dict lookup for a guild without
    rules) plus what the grant costs. On a level-up
    the bot posts "<member> reached level N" (pinging only that member) and gives the reward
    roles the grant says are due, taking those it says to revoke (highest-only rewards).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args

import discord
import pydantic
from discord.ext import commands

from botdata.managers.permissions import Outcome
from botdata.managers.xp import MAX_LEVEL, MAX_XP, LevelSettings, level_threshold
from botdata.schemas import XPGrantSchema

from .core import (
    BotdataCog,
    GuildContext,
    cog_setup,
    hybrid_command,
    hybrid_group,
    level_or_permissions,
    starts_with_prefix,
)
from .limits import excerpt
from .modlog import name_of
from .paging import PAGE_SIZE, list_embed

log = logging.getLogger(__name__)

ADMIN_LEVEL = 5
#: The highest leaderboard page.
MAX_LEADERBOARD_PAGE = 10_000
#: The words ``levels reset`` wants before resetting everyone.
RESET_ALL = "all confirm"
#: Characters of the progress bar in ``rank``.
BAR_WIDTH = 20

XP = commands.Range[int, 0, MAX_XP]
Level = commands.Range[int, 0, MAX_LEVEL]
LeaderboardPage = commands.Range[int, 1, MAX_LEADERBOARD_PAGE]
SettingName = Literal[
    "xp",
    "cooldown",
    "curve",
    "noxpchannel",
    "noxprole",
    "multiplier",
    "reward",
    "stacking",
    "levelupchannel",
]
#: The names ``levels settings`` takes.
SETTINGS: tuple[str, ...] = get_args(SettingName)

_XP_RANGE = re.compile(r"([0-9]+)\s*(?:-|\s)\s*([0-9]+)")
# Digits a whole number typed into a setting may have: every bound is below 10**9.
_MAX_DIGITS = 9
_SWITCH = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}


class Levels(BotdataCog):
    """XP, levels, reward roles, ranks and the leaderboard."""

    # Messages ----------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Give the author the XP of the message; announce a level-up and apply rewards."""
        author = message.author
        if author.bot or message.guild is None or not isinstance(author, discord.Member):
            return
        if message.is_system():  # joins, boosts, pins: not talking
            return
        if await starts_with_prefix(self.bot, message):
            return  # a command, or a snippet's short form (<prefix><name>)
        channel = message.channel
        if await self.outcome(author, channel) is not Outcome.ALLOWED:
            return
        grant = await self.db.levels.grant_message_xp(
            message.guild.id,
            author.id,
            role_ids=[role.id for role in author.roles],
            channel_id=channel.parent_id if isinstance(channel, discord.Thread) else channel.id,
        )
        if grant is None:
            return
        if grant.levelled_up:
            await self._announce(message, grant)
        if grant.rewards_due or grant.rewards_revoked:
            await self._reward(author, grant)

    async def _announce(self, message: discord.Message, grant: XPGrantSchema) -> None:
        """Post the level-up in the level-up channel, or where the member talked."""
        assert message.guild is not None
        settings = await self.db.levels.settings_for(message.guild.id)
        target: discord.abc.Messageable = message.channel
        if settings.level_up_channel_id is not None:
            found = message.guild.get_channel_or_thread(settings.level_up_channel_id)
            if isinstance(found, discord.abc.Messageable):
                target = found
        author = message.author
        try:
            await target.send(
                f"{author.mention} reached level {grant.level}",
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[author], replied_user=False
                ),
            )
        except discord.HTTPException as exc:
            log.warning("guild %s: cannot post a level-up: %s", message.guild.id, exc)

    async def _reward(self, member: discord.Member, grant: XPGrantSchema) -> None:
        """Give the reward roles due and take the revoked ones (those the bot can manage)."""
        guild = member.guild
        have = {role.id for role in member.roles}
        give = [r for r in _roles(guild, grant.rewards_due) if r.id not in have]
        take = [r for r in _roles(guild, grant.rewards_revoked) if r.id in have]
        reason = f"Level {grant.level} reward"
        try:
            if give:
                await member.add_roles(*give, reason=reason)
            if take:
                await member.remove_roles(*take, reason=reason)
        except discord.HTTPException as exc:
            log.warning("guild %s: cannot apply level rewards to %s: %s", guild.id, member.id, exc)

    # Everyone's commands ------------------------------------------------------------------------

    @hybrid_command(name="rank")
    @commands.guild_only()
    async def rank(self, ctx: GuildContext, member: discord.Member | None = None) -> None:
        """Show your rank, level and XP, or a member's."""
        target = member or ctx.author
        row = await self.db.levels.get(ctx.guild.id, target.id)
        position = await self.db.levels.rank(ctx.guild.id, target.id)
        if row is None or position is None:
            await self.send(ctx, f"{name_of(target)} has no XP yet.")
            return
        curve = (await self.db.levels.settings_for(ctx.guild.id)).curve_multiplier
        floor = level_threshold(row.level, curve)
        step = level_threshold(row.level + 1, curve) - floor
        done = row.xp - floor
        embed = discord.Embed(title=f"Rank of {target.display_name}")
        embed.add_field(name="Rank", value=f"#{position}")
        embed.add_field(name="Level", value=str(row.level))
        embed.add_field(name="XP", value=str(row.xp))
        filled = BAR_WIDTH * done // step
        embed.add_field(
            name=f"Progress to level {row.level + 1}",
            value=f"`{'█' * filled}{'░' * (BAR_WIDTH - filled)}` {done} / {step} XP",
            inline=False,
        )
        if row.blacklisted:
            embed.set_footer(text="Blacklisted: earns no XP.")
        await self.send(ctx, embed=embed)

    @hybrid_command(name="leaderboard")
    @commands.guild_only()
    async def leaderboard(self, ctx: GuildContext, page: LeaderboardPage = 1) -> None:
        """Show the members with the most XP, ten a page."""
        entries = await self.db.levels.leaderboard(
            ctx.guild.id, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
        if not entries:
            await self.send(ctx, "Nobody has XP yet." if page == 1 else f"Page {page} is empty.")
            return
        lines = [
            f"**#{e.rank}** <@{e.member_id}> · level {e.level} · {e.xp} XP"
            for e in entries[:PAGE_SIZE]
        ]
        embed = list_embed(
            f"Leaderboard of {ctx.guild.name}",
            lines,
            page,
            len(entries) > PAGE_SIZE,
            f"{ctx.clean_prefix}leaderboard {page + 1}",
        )
        await self.send(ctx, embed=embed)

    # Administration ------------------------------------------------------------------------------

    @hybrid_group(name="levels")
    @commands.guild_only()
    @level_or_permissions(ADMIN_LEVEL, manage_guild=True)
    async def levels(self, ctx: GuildContext) -> None:
        """Manage XP and the level settings."""
        names = ", ".join(sorted(f"`{command.name}`" for command in self.levels.commands))
        await self.send(ctx, f"Subcommands of `levels`: {names}.")

    @levels.command(name="set")
    @level_or_permissions(ADMIN_LEVEL, manage_guild=True)
    async def set_xp(self, ctx: GuildContext, member: discord.Member, xp: XP) -> None:
        """Set a member's XP (their level follows)."""
        row = await self.db.levels.set_xp(ctx.guild.id, _not_bot(member).id, xp)
        await self.send(ctx, f"{name_of(member)} now has {row.xp} XP (level {row.level}).")

    @levels.command(name="setlevel")
    @level_or_permissions(ADMIN_LEVEL, manage_guild=True)
    async def set_level(self, ctx: GuildContext, member: discord.Member, level: Level) -> None:
        """Set a member's level (their XP becomes the level's threshold)."""
        row = await self.db.levels.set_level(ctx.guild.id, _not_bot(member).id, level)
        await self.send(ctx, f"{name_of(member)} is now level {row.level} ({row.xp} XP).")

    @levels.command(name="reset")
    @level_or_permissions(ADMIN_LEVEL, manage_guild=True)
    async def reset(
        self,
        ctx: GuildContext,
        member: discord.Member | None = None,
        *,
        confirm: str = "",
    ) -> None:
        """Reset a member's XP, or everyone's with `all confirm`."""
        if member is not None:
            if await self.db.levels.reset(ctx.guild.id, member.id):
                await self.send(ctx, f"{name_of(member)}'s XP was reset.")
            else:
                await self.send(ctx, f"{name_of(member)} has no XP.")
            return
        if " ".join(confirm.lower().split()) != RESET_ALL:
            raise commands.BadArgument(
                f"Name a member, or type `{ctx.clean_prefix}levels reset {RESET_ALL}` to reset"
                " everyone's XP."
            )
        count = await self.db.levels.reset(ctx.guild.id)
        await self.send(ctx, f"Reset the XP of {count} member{'s' if count != 1 else ''}.")

    @levels.command(name="blacklist")
    @level_or_permissions(ADMIN_LEVEL, manage_guild=True)
    async def blacklist(self, ctx: GuildContext, member: discord.Member) -> None:
        """Stop a member from earning XP (they keep what they have)."""
        await self.db.levels.blacklist(ctx.guild.id, _not_bot(member).id)
        await self.send(ctx, f"{name_of(member)} no longer earns XP.")

    @levels.command(name="unblacklist")
    @level_or_permissions(ADMIN_LEVEL, manage_guild=True)
    async def unblacklist(self, ctx: GuildContext, member: discord.Member) -> None:
        """Let a blacklisted member earn XP again."""
        if await self.db.levels.unblacklist(ctx.guild.id, member.id) is None:
            await self.send(ctx, f"{name_of(member)} is not blacklisted.")
        else:
            await self.send(ctx, f"{name_of(member)} earns XP again.")

    @levels.command(name="settings")
    @level_or_permissions(ADMIN_LEVEL, manage_guild=True)
    async def settings(
        self,
        ctx: GuildContext,
        name: SettingName | None = None,
        *,
        value: str = "",
    ) -> None:
        """Show the level settings, or change one: `settings <name> <value>`."""
        current = await self.db.levels.settings_for(ctx.guild.id)
        if name is None and not value:
            await self.send(ctx, embed=settings_embed(current))
            return
        if name is None:
            raise commands.BadArgument(f"Settings are {', '.join(SETTINGS)}.")
        if not value:
            raise commands.BadArgument(f"Give a value for `{name}`.")
        changes = await _CHANGES[name](ctx, current, value.strip())
        try:
            updated = LevelSettings.model_validate({**current.model_dump(), **changes})
        except pydantic.ValidationError as exc:
            raise commands.BadArgument(_explain(exc)) from None
        stored = await self.db.levels.configure(ctx.guild.id, updated, updated_by=ctx.author.id)
        await self.send(ctx, f"Updated. {describe(stored)[name]}")


# Settings --------------------------------------------------------------------------------------


def describe(settings: LevelSettings) -> dict[str, str]:
    """One line per setting name: ``{name: "Label: value"}`` (channels and roles as mentions)."""

    def ids(prefix: str, found: frozenset[int]) -> str:
        return " ".join(f"<{prefix}{i}>" for i in sorted(found)) or "none"

    multipliers = sorted(settings.role_multipliers.items())
    rewards = sorted(settings.role_rewards.items())
    channel = settings.level_up_channel_id
    return {
        "xp": f"XP per message: {settings.xp_min}-{settings.xp_max}",
        "cooldown": f"Cooldown: {settings.cooldown:g}s",
        "curve": f"Curve multiplier: x{settings.curve_multiplier:g}",
        "noxpchannel": f"No-XP channels: {ids('#', settings.no_xp_channel_ids)}",
        "noxprole": f"No-XP roles: {ids('@&', settings.no_xp_role_ids)}",
        "multiplier": "Role multipliers: "
        + (", ".join(f"<@&{r}> x{m:g}" for r, m in multipliers) or "none"),
        "reward": "Rewards: " + (", ".join(f"level {lvl} <@&{r}>" for lvl, r in rewards) or "none"),
        "stacking": f"Stacking rewards: {'on' if settings.stack_rewards else 'off (highest only)'}",
        "levelupchannel": "Level-up messages: "
        + (f"<#{channel}>" if channel else "where the member talked"),
    }


def settings_embed(settings: LevelSettings) -> discord.Embed:
    """An embed of every level setting, each with the name that changes it."""
    lines = [f"`{name}` {line}" for name, line in describe(settings).items()]
    embed = discord.Embed(title="Level settings", description="\n".join(lines))
    embed.set_footer(text="Change one with: levels settings <name> <value>")
    return embed


async def _xp(ctx: commands.Context, current: LevelSettings, value: str) -> dict[str, Any]:
    found = _XP_RANGE.fullmatch(value)
    if found is None:
        raise commands.BadArgument("Give the XP range as min-max, e.g. 15-25.")
    return {"xp_min": _whole(found[1], "an XP amount"), "xp_max": _whole(found[2], "an XP amount")}


async def _cooldown(ctx: commands.Context, current: LevelSettings, value: str) -> dict[str, Any]:
    return {"cooldown": _number(value, "a number of seconds")}


async def _curve(ctx: commands.Context, current: LevelSettings, value: str) -> dict[str, Any]:
    return {"curve_multiplier": _number(value, "a multiplier")}


async def _no_xp_channel(
    ctx: commands.Context, current: LevelSettings, value: str
) -> dict[str, Any]:
    add, rest = _add_or_remove(value)
    channel = await commands.GuildChannelConverter().convert(ctx, rest)
    return {"no_xp_channel_ids": _toggle(current.no_xp_channel_ids, channel.id, add)}


async def _no_xp_role(ctx: commands.Context, current: LevelSettings, value: str) -> dict[str, Any]:
    add, rest = _add_or_remove(value)
    role = await commands.RoleConverter().convert(ctx, rest)
    return {"no_xp_role_ids": _toggle(current.no_xp_role_ids, role.id, add)}


async def _multiplier(ctx: commands.Context, current: LevelSettings, value: str) -> dict[str, Any]:
    text, _, factor = value.rpartition(" ")
    if not text.strip():
        raise commands.BadArgument("Give a role, then a factor or remove: `multiplier @Role 2`.")
    role = await commands.RoleConverter().convert(ctx, text.strip())
    multipliers = dict(current.role_multipliers)
    if factor.lower() == "remove":
        if multipliers.pop(role.id, None) is None:
            raise commands.BadArgument(f"{role.name} has no multiplier.")
    else:
        multipliers[role.id] = _number(factor, "a multiplier (or remove)")
    return {"role_multipliers": multipliers}


async def _reward(ctx: commands.Context, current: LevelSettings, value: str) -> dict[str, Any]:
    level_text, _, rest = value.partition(" ")
    rest = rest.strip()
    if not rest:
        raise commands.BadArgument("Give a level, then a role or remove: `reward 5 @Role`.")
    level = _whole(level_text, "a level")
    if level > MAX_LEVEL:
        raise commands.BadArgument(f"A reward's level is at most {MAX_LEVEL}.")
    rewards = dict(current.role_rewards)
    if rest.lower() == "remove":
        if rewards.pop(level, None) is None:
            raise commands.BadArgument(f"Level {level} has no reward.")
    else:
        rewards[level] = (await commands.RoleConverter().convert(ctx, rest)).id
    return {"role_rewards": rewards}


async def _stacking(ctx: commands.Context, current: LevelSettings, value: str) -> dict[str, Any]:
    if value.lower() not in _SWITCH:
        raise commands.BadArgument("Stacking is `on` or `off`.")
    return {"stack_rewards": _SWITCH[value.lower()]}


async def _level_up_channel(
    ctx: commands.Context, current: LevelSettings, value: str
) -> dict[str, Any]:
    if value.lower() == "none":
        return {"level_up_channel_id": None}
    channel = await commands.TextChannelConverter().convert(ctx, value)
    return {"level_up_channel_id": channel.id}


_CHANGES: dict[str, Callable[[commands.Context, LevelSettings, str], Awaitable[dict[str, Any]]]] = {
    "xp": _xp,
    "cooldown": _cooldown,
    "curve": _curve,
    "noxpchannel": _no_xp_channel,
    "noxprole": _no_xp_role,
    "multiplier": _multiplier,
    "reward": _reward,
    "stacking": _stacking,
    "levelupchannel": _level_up_channel,
}


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise commands.BadArgument(f"`{excerpt(text)}` is not {what}.") from None


def _whole(text: str, what: str) -> int:
    """``text`` as a whole number of at most :data:`_MAX_DIGITS` digits (the settings check
    the range), else :class:`commands.BadArgument`."""
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > _MAX_DIGITS:
        raise commands.BadArgument(f"`{excerpt(text)}` is not {what} (too large or not a number).")
    return int(text)


def _add_or_remove(value: str) -> tuple[bool, str]:
    action, _, rest = value.partition(" ")
    if action.lower() not in ("add", "remove") or not rest.strip():
        raise commands.BadArgument("Say `add` or `remove`, then which one.")
    return action.lower() == "add", rest.strip()


def _toggle(ids: frozenset[int], item: int, add: bool) -> frozenset[int]:
    return ids | {item} if add else ids - {item}


def _explain(error: pydantic.ValidationError) -> str:
    """The errors of a settings change, short: ``cooldown: Input should be ...``."""
    parts = []
    for found in error.errors():
        where = ".".join(str(part) for part in found["loc"])
        message = found["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "Invalid setting: " + "; ".join(parts) + "."


# Helpers ---------------------------------------------------------------------------------------


def _roles(guild: discord.Guild, role_ids: tuple[int, ...]) -> list[discord.Role]:
    """The roles of ``role_ids`` that exist and the bot can give or take."""
    found = (guild.get_role(role_id) for role_id in role_ids)
    return [role for role in found if role is not None and role.is_assignable()]


def _not_bot(member: discord.Member) -> discord.Member:
    if member.bot:
        raise commands.BadArgument("Bots do not earn XP.")
    return member


setup, teardown = cog_setup(Levels)
