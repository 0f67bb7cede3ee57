"""The permissions cog: rules made from Discord, and obeyed by every cog."""

from __future__ import annotations

import discord
import discord.ext.test as dpytest
from discord.ext.test import backend

import botdata
from botdata_cogs import limits
from botdata_cogs.testing import SimulatedGuild, say


async def test_deny_a_command_for_a_member_then_remove_the_rule(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(
        f"{p}perm deny command:config {simulated_guild.mod.mention}", simulated_guild.mod
    )
    assert reply.content.startswith("Rule ")
    assert f"deny command `config` for <@{simulated_guild.mod.id}>" in reply.content
    rule_id = int(reply.content.split()[1].rstrip(":"))
    [refused] = await say(f"{p}config prefix ?", simulated_guild.mod)  # the subcommand is covered
    assert "not allowed" in refused.content
    [listing] = await say(f"{p}perm list", simulated_guild.mod)
    assert f"`{rule_id}` deny command `config`" in listing.content
    [removed] = await say(f"{p}perm remove {rule_id}", simulated_guild.mod)
    assert removed.content == f"Rule {rule_id} removed."
    [ok] = await say(f"{p}config prefix ?", simulated_guild.mod)
    assert ok.content == "Prefix is now `?`."


async def test_a_module_rule_for_a_channel_with_a_duration(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(
        f"{p}perm ignore Config {simulated_guild.channel.mention} 1h", simulated_guild.mod
    )
    assert f"ignore module `config` for <#{simulated_guild.channel.id}> for 59m" in reply.content
    [rule] = await botdata_db.permissions.rules(simulated_guild.guild.id)
    assert rule.expires_at is not None
    assert await say(f"{p}config", simulated_guild.mod) == []  # ignored: no reply at all
    [listing] = await say(f"{p}perm", simulated_guild.mod)  # other modules still answer
    assert "ignore module `config`" in listing.content


async def test_non_moderators_and_bad_input_are_refused_without_writing(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    [reply] = await say(
        f"{p}perm deny config {simulated_guild.other.mention}", simulated_guild.member
    )
    assert "permission level 5" in reply.content
    [reply] = await say(
        f"{p}perm deny nosuchthing {simulated_guild.other.mention}", simulated_guild.mod
    )
    assert "no command or module called `nosuchthing`" in reply.content
    [reply] = await say(
        f"{p}perm deny config {simulated_guild.other.mention} 10x", simulated_guild.mod
    )
    assert "not a duration" in reply.content
    [reply] = await say(f"{p}perm remove 999", simulated_guild.mod)
    assert reply.content == "There is no rule 999."
    assert await botdata_db.permissions.rules(simulated_guild.guild.id) == []


async def test_the_owner_and_administrators_cannot_lock_themselves_out(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    owner = simulated_guild.other
    simulated_guild.guild.owner_id = owner.id
    admin = await dpytest.member_join(simulated_guild.guild, name="Admin")
    admins = backend.make_role(
        "Admins", simulated_guild.guild, permissions=discord.Permissions(administrator=True).value
    )
    await dpytest.add_role(admin, admins)
    everyone = simulated_guild.guild.default_role
    [reply] = await say(f"{p}perm deny perm @everyone", owner)  # the command and its subcommands
    assert f"deny command `perm` for <@&{everyone.id}>" in reply.content
    [reply] = await say(f"{p}perm ignore permissions @everyone", owner)  # the whole module
    assert f"ignore module `permissions` for <@&{everyone.id}>" in reply.content
    [refused] = await say(
        f"{p}perm", simulated_guild.mod
    )  # level 5 but no Administrator: rules apply
    assert "not allowed" in refused.content
    [listing] = await say(f"{p}perm", admin)
    [first, second] = [line.split("`")[1] for line in listing.content.splitlines()]
    [removed] = await say(f"{p}perm remove {first}", admin)
    assert removed.content == f"Rule {first} removed."
    [removed] = await say(f"{p}perm remove {second}", owner)
    assert removed.content == f"Rule {second} removed."
    [listing] = await say(f"{p}perm", simulated_guild.mod)
    assert listing.content == "No access rules: every command is allowed."


async def test_a_module_rule_covers_every_command_of_the_module_and_the_short_form(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    await botdata_db.snippets.create(
        simulated_guild.guild.id, "rules", "Be nice.", author_id=simulated_guild.mod.id
    )
    [reply] = await say(
        f"{p}perm ignore snippets {simulated_guild.channel.mention}", simulated_guild.mod
    )
    assert f"ignore module `snippets` for <#{simulated_guild.channel.id}>" in reply.content
    for command in ("snippets", "snippet rules", "rules", "snippet info rules"):
        assert await say(f"{p}{command}", simulated_guild.member) == [], command
    elsewhere = backend.make_text_channel("elsewhere", simulated_guild.guild)
    [answer] = await say(f"{p}rules", simulated_guild.member, elsewhere)
    assert answer.content == "Be nice."


async def test_explicit_command_and_module_targets(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    await botdata_db.snippets.create(
        simulated_guild.guild.id, "rules", "Be nice.", author_id=simulated_guild.mod.id
    )
    member = simulated_guild.member.mention
    [reply] = await say(f"{p}perm deny command:snippets {member}", simulated_guild.mod)
    assert "deny command `snippets`" in reply.content
    [refused] = await say(f"{p}snippets", simulated_guild.member)
    assert "not allowed" in refused.content
    [answer] = await say(
        f"{p}snippet rules", simulated_guild.member
    )  # the rest of the module answers
    assert answer.content == "Be nice."
    [reply] = await say(f"{p}perm deny Module:Snippets {member}", simulated_guild.mod)
    assert "deny module `snippets`" in reply.content
    [refused] = await say(f"{p}rules", simulated_guild.member)
    assert "not allowed" in refused.content
    [reply] = await say(f"{p}perm deny module:nosuch {member}", simulated_guild.mod)
    assert "There is no module called `nosuch`." in reply.content
    [reply] = await say(f"{p}perm deny command:nosuch {member}", simulated_guild.mod)
    assert "There is no command called `nosuch`." in reply.content
    [reply] = await say(f"{p}perm deny command:ban {member}", simulated_guild.mod)
    assert "deny command `ban`" in reply.content
    assert len(await botdata_db.permissions.rules(simulated_guild.guild.id)) == 3


async def test_huge_numbers_and_long_names_get_a_short_refusal(
    simulated_guild: SimulatedGuild, botdata_db: botdata.Database
) -> None:
    p = botdata_db.settings.DEFAULT_PREFIX
    for rule_id in ("99999999999999999999", "9" * 5000, "0"):
        [reply] = await say(f"{p}perm remove {rule_id}", simulated_guild.mod)
        assert "Usage" in reply.content
        assert "Something went wrong" not in reply.content
        assert limits.length(reply.content) <= limits.REFUSAL
    name = "x" * 1990
    [reply] = await say(f"{p}perm deny {name} {simulated_guild.other.mention}", simulated_guild.mod)
    assert f"There is no command or module called `{limits.excerpt(name)}`." in reply.content
    [reply] = await say(f"{p}perm deny config {name}", simulated_guild.mod)
    assert f"`{limits.excerpt(name)}` is not a member, role, channel or category." in reply.content
    [reply] = await say(
        f"{p}perm deny config {simulated_guild.other.mention} 99999999999d", simulated_guild.mod
    )
    assert "at most 5 years" in reply.content
    assert await botdata_db.permissions.rules(simulated_guild.guild.id) == []
