"""Access rules: allow, deny or ignore a command or module for a member, role, channel, category.

Commands (level 5 or Manage Server): ``perm allow|deny|ignore <target name> <member, role,
channel or category> [duration]``, ``perm list``, ``perm remove <rule id>``. See
``botdata.managers.permissions`` for which rule wins when several match.

What a rule names
    ``module:<name>`` names a module, which is a cog (``module:snippets``, ``module:levels``):
    the rule covers every command of the cog and its listeners for members (the snippet short
    form ``<prefix><name>``, XP per message, AFK notices and welcome-backs, stars).
    ``command:<name>`` names a top-level command (or one of its aliases) and covers its
    subcommands. A bare name is a module when a cog of that name exists and a command
    otherwise, so ``perm ignore snippets #general`` silences the whole snippets module while
    ``perm ignore command:snippets #general`` silences only the ``snippets`` list.

Nobody is locked out
    The guild owner and members with Administrator are not subject to access rules for this
    cog's commands (``perm`` and its subcommands): whatever rule exists, they can list and
    remove rules. Everyone else's use of ``perm`` follows the rules like any command.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import discord
from discord.ext import commands

from botdata.models import AccessType, PermissionType
from botdata.schemas import GuildPermissionSchema

from .core import (
    BotdataCog,
    GuildContext,
    cog_setup,
    human,
    hybrid_group,
    level_or_permissions,
    parse_duration,
)
from .limits import CONTENT, excerpt, fit_lines

RULES_LEVEL = 5
#: The highest rule id ``perm remove`` takes (Discord's largest integer option).
MAX_RULE_ID = 2**53
#: Command argument: a rule's id.
RuleId = commands.Range[int, 1, MAX_RULE_ID]
Target = discord.Member | discord.Role | discord.TextChannel | discord.CategoryChannel


class RuleTarget(commands.Converter[Target]):
    """A member, role, text channel or category, by mention, id or name (in that order)."""

    async def convert(self, ctx: commands.Context, argument: str) -> Target:
        converters: tuple[type[commands.Converter], ...] = (
            commands.MemberConverter,
            commands.RoleConverter,
            commands.TextChannelConverter,
            commands.CategoryChannelConverter,
        )
        for converter in converters:
            try:
                return await converter().convert(ctx, argument)
            except commands.BadArgument:
                continue
        raise commands.BadArgument(
            f"`{excerpt(argument)}` is not a member, role, channel or category."
        )


def _target_type(target: Target) -> PermissionType:
    if isinstance(target, discord.Member):
        return PermissionType.MEMBER
    if isinstance(target, discord.Role):
        return PermissionType.ROLE
    if isinstance(target, discord.CategoryChannel):
        return PermissionType.CATEGORY
    return PermissionType.CHANNEL


class Permissions(BotdataCog):
    """Who may use which commands where."""

    admins_bypass_rules = True

    def _scope(self, name: str) -> dict[str, str]:
        """``{"module": ...}`` or ``{"command": ...}`` for ``module:<name>``, ``command:<name>``
        or a bare name (a module when a cog of that name exists, else a command).

        Raises :class:`commands.BadArgument` when there is no such module or command.
        """
        kind, colon, rest = name.partition(":")
        kind = kind.lower()
        if colon and kind in ("module", "command"):
            found = self._module(rest) if kind == "module" else self._command(rest)
            if found is None:
                raise commands.BadArgument(f"There is no {kind} called `{excerpt(rest)}`.")
            return {kind: found}
        module = self._module(name)
        if module is not None:
            return {"module": module}
        command = self._command(name)
        if command is not None:
            return {"command": command}
        raise commands.BadArgument(f"There is no command or module called `{excerpt(name)}`.")

    def _module(self, name: str) -> str | None:
        """The module (lower-case cog name) called ``name`` ignoring case, or None."""
        wanted = name.lower()
        return next((cog.lower() for cog in self.bot.cogs if cog.lower() == wanted), None)

    def _command(self, name: str) -> str | None:
        """The top-level command ``name`` is (or is an alias of), or None."""
        command = self.bot.get_command(name)
        return None if command is None else (command.root_parent or command).qualified_name

    async def _add(
        self,
        ctx: GuildContext,
        access: AccessType,
        name: str,
        target: Target,
        duration: str | None,
    ) -> None:
        scope = self._scope(name)
        until = self.db.clock.now() + parse_duration(duration) if duration else None
        rule = await self.db.permissions.add_rule(
            ctx.guild.id,
            access=access,
            target_type=_target_type(target),
            target_id=target.id,
            target_name=str(target)[:100],
            until=until,
            created_by=ctx.author.id,
            **scope,
        )
        await self.send(ctx, f"Rule {rule.id}: {describe(rule)}.")

    @hybrid_group(name="perm", fallback="list")
    @commands.guild_only()
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def perm(self, ctx: GuildContext) -> None:
        """List this server's access rules."""
        rules = await self.db.permissions.rules(ctx.guild.id)
        if not rules:
            await self.send(ctx, "No access rules: every command is allowed.")
            return
        lines = [f"`{rule.id}` {describe(rule)}" for rule in rules]
        await self.send(ctx, fit_lines(lines, CONTENT))

    @perm.command(name="allow")
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def allow(
        self,
        ctx: GuildContext,
        name: str,
        target: Annotated[Target, RuleTarget],
        duration: str | None = None,
    ) -> None:
        """Whitelist a command or module for a member, role, channel or category."""
        await self._add(ctx, AccessType.WHITELIST, name, target, duration)

    @perm.command(name="deny")
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def deny(
        self,
        ctx: GuildContext,
        name: str,
        target: Annotated[Target, RuleTarget],
        duration: str | None = None,
    ) -> None:
        """Blacklist a command or module for a member, role, channel or category."""
        await self._add(ctx, AccessType.BLACKLIST, name, target, duration)

    @perm.command(name="ignore")
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def ignore(
        self,
        ctx: GuildContext,
        name: str,
        target: Annotated[Target, RuleTarget],
        duration: str | None = None,
    ) -> None:
        """Make the bot silently ignore a command or module for a target."""
        await self._add(ctx, AccessType.IGNORE, name, target, duration)

    @perm.command(name="remove")
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def remove(self, ctx: GuildContext, rule_id: RuleId) -> None:
        """Remove the rule with this number (see `perm list`)."""
        if await self.db.permissions.remove_rule(ctx.guild.id, rule_id, removed_by=ctx.author.id):
            await self.send(ctx, f"Rule {rule_id} removed.")
        else:
            await self.send(ctx, f"There is no rule {rule_id}.")


_VERBS = {AccessType.WHITELIST: "allow", AccessType.BLACKLIST: "deny", AccessType.IGNORE: "ignore"}
_MENTION = {
    PermissionType.MEMBER: "<@{}>",
    PermissionType.ROLE: "<@&{}>",
    PermissionType.CHANNEL: "<#{}>",
    PermissionType.CATEGORY: "<#{}>",
}


def describe(rule: GuildPermissionSchema) -> str:
    """``deny command `ban` for @member until <time>`` for a rule."""
    scope = f"command `{rule.command}`" if rule.command else f"module `{rule.module}`"
    target = _MENTION[rule.type].format(rule.target_id)
    text = f"{_VERBS[rule.access]} {scope} for {target}"
    if rule.expires_at:
        left = rule.expires_at - datetime.now(timezone.utc)
        text += f" for {human(left)} more"
    return text


setup, teardown = cog_setup(Permissions)
