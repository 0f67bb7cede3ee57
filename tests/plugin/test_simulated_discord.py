"""What botdata_cogs.testing.SimulatedDiscord adds to dpytest: role creation on discord.py 2.6+
and the guild's audit log (both backends: the simulated guild runs on botdata_db)."""

from __future__ import annotations

import discord

from botdata_cogs.testing import SimulatedGuild


async def test_a_role_can_be_created_and_is_in_the_guild(simulated_guild: SimulatedGuild) -> None:
    guild = simulated_guild.guild
    role = await guild.create_role(
        name="Jailed", permissions=discord.Permissions(send_messages=True), reason="setup"
    )
    assert guild.get_role(role.id) is not None
    assert (role.name, role.permissions.send_messages) == ("Jailed", True)
    [entry] = [entry async for entry in guild.audit_logs(limit=10)]
    assert (entry.action, entry.target.id, entry.reason) == (
        discord.AuditLogAction.role_create,
        role.id,
        "setup",
    )


async def test_the_audit_log_holds_the_bots_actions_and_hand_made_ones_newest_first(
    simulated_guild: SimulatedGuild,
) -> None:
    g = simulated_guild
    await g.guild.ban(g.member, reason="spam")
    await g.other.edit(nick="Renamed", reason="tidy")
    g.discord_api.log(discord.AuditLogAction.kick, user=g.mod, target=g.other, reason="by hand")
    entries = [entry async for entry in g.guild.audit_logs(limit=10)]
    assert [(e.action, e.user.id, e.target.id, e.reason) for e in entries] == [
        (discord.AuditLogAction.kick, g.mod.id, g.other.id, "by hand"),
        (discord.AuditLogAction.member_update, g.guild.me.id, g.other.id, "tidy"),
        (discord.AuditLogAction.ban, g.guild.me.id, g.member.id, "spam"),
    ]
    bans = [e async for e in g.guild.audit_logs(action=discord.AuditLogAction.ban)]
    assert [e.target.id for e in bans] == [g.member.id]
    by_mod = [e async for e in g.guild.audit_logs(user=g.mod)]
    assert [e.action for e in by_mod] == [discord.AuditLogAction.kick]
    assert [e.id async for e in g.guild.audit_logs(limit=1)] == [entries[0].id]
