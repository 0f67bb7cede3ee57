"""Guild configuration: prefix, log channels, jail, permission-level roles and an overview.

Commands (level 5 or Manage Server): ``config`` (overview), ``config prefix <prefix|reset>``,
``config log <kind> <channel|none>``, ``config jail <role> <channel>``,
``config level <0-7> <role|none>``.

Nobody sets or clears a permission level at or above their own (a level-5 admin manages
levels 0-4); the guild owner (level 7) manages every level. Administrator gives no level of its
own: an administrator's level is that of their roles.
"""

from __future__ import annotations

from typing import Literal

import discord
from discord.ext import commands

from botdata.schemas import GuildConfigSchema

from .core import (
    BotdataCog,
    GuildContext,
    MissingLevel,
    cog_setup,
    hybrid_group,
    level_of,
    level_or_permissions,
)

#: Log kinds and their configuration fields.
LOG_FIELDS = {
    "mod": "mod_log_id",
    "audit": "audit_log_id",
    "join": "join_log_id",
    "private": "private_log_id",
    "report": "report_log_id",
    "dev": "dev_log_id",
}
LogKind = Literal["mod", "audit", "join", "private", "report", "dev"]
CONFIG_LEVEL = 5


class Config(BotdataCog):
    """Server configuration."""

    @hybrid_group(name="config", fallback="show")
    @commands.guild_only()
    @level_or_permissions(CONFIG_LEVEL, manage_guild=True)
    async def config(self, ctx: GuildContext) -> None:
        """Show this server's configuration."""
        await self.send(ctx, embed=overview(ctx.guild, await self.db.guilds.config(ctx.guild.id)))

    @config.command(name="prefix")
    @level_or_permissions(CONFIG_LEVEL, manage_guild=True)
    async def prefix(self, ctx: GuildContext, prefix: str) -> None:
        """Set the command prefix (1-10 characters), or `reset` to the default."""
        value = None if prefix.lower() == "reset" else prefix
        config = await self.db.guilds.update_config(
            ctx.guild.id, updated_by=ctx.author.id, prefix=value
        )
        shown = config.prefix or self.db.settings.DEFAULT_PREFIX
        await self.send(ctx, f"Prefix is now `{discord.utils.escape_markdown(shown)}`.")

    @config.command(name="log")
    @level_or_permissions(CONFIG_LEVEL, manage_guild=True)
    async def log(
        self, ctx: GuildContext, kind: LogKind, channel: discord.TextChannel | None = None
    ) -> None:
        """Set the channel of a log (mod, audit, join, private, report, dev); none to clear."""
        await self.db.guilds.update_config(
            ctx.guild.id, updated_by=ctx.author.id, **{LOG_FIELDS[kind]: _id(channel)}
        )
        where = channel.mention if channel else "nowhere"
        await self.send(ctx, f"The {kind} log now goes {'to ' if channel else ''}{where}.")

    @config.command(name="jail")
    @level_or_permissions(CONFIG_LEVEL, manage_guild=True)
    async def jail(
        self, ctx: GuildContext, role: discord.Role, channel: discord.TextChannel
    ) -> None:
        """Set the jail role and the channel jailed members can still see."""
        await self.db.guilds.update_config(
            ctx.guild.id, updated_by=ctx.author.id, jail_role_id=role.id, jail_channel_id=channel.id
        )
        await self.send(ctx, f"Jail role is {role.mention}, jail channel {channel.mention}.")

    @config.command(name="level")
    @level_or_permissions(CONFIG_LEVEL, manage_guild=True)
    async def level(
        self,
        ctx: GuildContext,
        number: commands.Range[int, 0, 7],
        role: discord.Role | None = None,
    ) -> None:
        """Give permission level 0-7 to a role, or clear it (only levels below your own)."""
        own = await level_of(ctx)
        if number >= own and ctx.author.id != ctx.guild.owner_id:
            raise MissingLevel(f"You can only set or clear levels below your own ({own}).")
        if role is None:
            await self.db.permissions.clear_level_role(ctx.guild.id, number)
            await self.send(ctx, f"Level {number} has no role now.")
        else:
            await self.db.permissions.set_level_role(ctx.guild.id, number, role.id)
            await self.send(ctx, f"Level {number} is now {role.mention}.")


def _id(channel: discord.abc.Snowflake | None) -> int | None:
    return channel.id if channel is not None else None


def overview(guild: discord.Guild, config: GuildConfigSchema) -> discord.Embed:
    """An embed listing ``config`` with channels and roles as mentions."""

    def channel(channel_id: int | None) -> str:
        return f"<#{channel_id}>" if channel_id else "not set"

    def role(role_id: int | None) -> str:
        return f"<@&{role_id}>" if role_id else "not set"

    embed = discord.Embed(title=f"Configuration of {guild.name}")
    embed.add_field(name="Prefix", value=f"`{config.prefix}`" if config.prefix else "default")
    embed.add_field(
        name="Logs",
        value="\n".join(f"{k}: {channel(getattr(config, f))}" for k, f in LOG_FIELDS.items()),
        inline=False,
    )
    embed.add_field(
        name="Jail",
        value=f"role {role(config.jail_role_id)}, channel {channel(config.jail_channel_id)}",
        inline=False,
    )
    embed.add_field(
        name="Permission levels",
        value="\n".join(
            f"{n}: {role(getattr(config, f'perm_level_{n}_role_id'))}" for n in range(8)
        ),
        inline=False,
    )
    return embed


setup, teardown = cog_setup(Config)
