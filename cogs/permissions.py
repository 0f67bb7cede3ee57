"""Access rules: allow, deny or ignore a command or module for a member, role, channel, category.

Commands (level 5 or Manage Server): ``perm allow|deny|ignore <command or module> <target>
[duration]``, ``perm list``, ``perm remove <rule id>``. A rule names a top-level command (and
covers its subcommands) or a module, which is a cog's name (``moderation``, ``snippets``...).
See ``botdata.managers.permissions`` for which rule wins when several match.
"""

from __future__ import annotations

from datetime import datetime, timezone

import discord
from discord.ext import commands

from botdata.models import AccessType, PermissionType
from botdata.schemas import GuildPermissionSchema
from cogs.core import BotdataCog, cog_setup, human, level_or_permissions, parse_duration

RULES_LEVEL = 5
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
        raise commands.BadArgument(f"`{argument}` is not a member, role, channel or category.")


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

    def _scope(self, name: str) -> dict[str, str]:
        """``{"command": ...}`` or ``{"module": ...}`` for a command or cog name."""
        command = self.bot.get_command(name)
        if command is not None:
            return {"command": (command.root_parent or command).qualified_name}
        for cog_name in self.bot.cogs:
            if cog_name.lower() == name.lower():
                return {"module": cog_name.lower()}
        raise commands.BadArgument(f"There is no command or module called `{name}`.")

    async def _add(
        self,
        ctx: commands.Context,
        access: AccessType,
        name: str,
        target: Target,
        duration: str | None,
    ) -> None:
        assert ctx.guild is not None
        scope = self._scope(name)
        until = datetime.now(timezone.utc) + parse_duration(duration) if duration else None
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

    @commands.hybrid_group(name="perm", fallback="list")
    @commands.guild_only()
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def perm(self, ctx: commands.Context) -> None:
        """List this server's access rules."""
        assert ctx.guild is not None
        rules = await self.db.permissions.rules(ctx.guild.id)
        if not rules:
            await self.send(ctx, "No access rules: every command is allowed.")
            return
        lines = [f"`{rule.id}` {describe(rule)}" for rule in rules]
        await self.send(ctx, "\n".join(lines)[:2000])

    @perm.command(name="allow")
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def allow(
        self, ctx: commands.Context, name: str, target: RuleTarget, duration: str | None = None
    ) -> None:
        """Whitelist a command or module for a member, role, channel or category."""
        await self._add(ctx, AccessType.WHITELIST, name, target, duration)

    @perm.command(name="deny")
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def deny(
        self, ctx: commands.Context, name: str, target: RuleTarget, duration: str | None = None
    ) -> None:
        """Blacklist a command or module for a member, role, channel or category."""
        await self._add(ctx, AccessType.BLACKLIST, name, target, duration)

    @perm.command(name="ignore")
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def ignore(
        self, ctx: commands.Context, name: str, target: RuleTarget, duration: str | None = None
    ) -> None:
        """Make the bot silently ignore a command or module for a target."""
        await self._add(ctx, AccessType.IGNORE, name, target, duration)

    @perm.command(name="remove")
    @level_or_permissions(RULES_LEVEL, manage_guild=True)
    async def remove(self, ctx: commands.Context, rule_id: int) -> None:
        """Remove the rule with this number (see `perm list`)."""
        assert ctx.guild is not None
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
