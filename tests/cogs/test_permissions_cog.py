"""The permissions cog: rules made from Discord, and obeyed by every cog."""

from __future__ import annotations

import botdata
from tests.cogs.conftest import Scene, say


async def test_deny_a_command_for_a_member_then_remove_the_rule(
    scene: Scene, db: botdata.Database
) -> None:
    p = db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}perm deny config {scene.mod.mention}", scene.mod)
    assert reply.content.startswith("Rule ")
    assert f"deny command `config` for <@{scene.mod.id}>" in reply.content
    rule_id = int(reply.content.split()[1].rstrip(":"))
    [refused] = await say(f"{p}config prefix ?", scene.mod)  # the subcommand is covered
    assert "not allowed" in refused.content
    [listing] = await say(f"{p}perm list", scene.mod)
    assert f"`{rule_id}` deny command `config`" in listing.content
    [removed] = await say(f"{p}perm remove {rule_id}", scene.mod)
    assert removed.content == f"Rule {rule_id} removed."
    [ok] = await say(f"{p}config prefix ?", scene.mod)
    assert ok.content == "Prefix is now `?`."


async def test_a_module_rule_for_a_channel_with_a_duration(
    scene: Scene, db: botdata.Database
) -> None:
    p = db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}perm ignore Config {scene.channel.mention} 1h", scene.mod)
    assert f"ignore module `config` for <#{scene.channel.id}> for 59m" in reply.content
    [rule] = await db.permissions.rules(scene.guild.id)
    assert rule.expires_at is not None
    assert await say(f"{p}config", scene.mod) == []  # ignored: no reply at all
    [listing] = await say(f"{p}perm", scene.mod)  # other modules still answer
    assert "ignore module `config`" in listing.content


async def test_non_moderators_and_bad_input_are_refused_without_writing(
    scene: Scene, db: botdata.Database
) -> None:
    p = db.settings.DEFAULT_PREFIX
    [reply] = await say(f"{p}perm deny config {scene.other.mention}", scene.member)
    assert "permission level 5" in reply.content
    [reply] = await say(f"{p}perm deny nosuchthing {scene.other.mention}", scene.mod)
    assert "no command or module called `nosuchthing`" in reply.content
    [reply] = await say(f"{p}perm deny config {scene.other.mention} 10x", scene.mod)
    assert "not a duration" in reply.content
    [reply] = await say(f"{p}perm remove 999", scene.mod)
    assert reply.content == "There is no rule 999."
    assert await db.permissions.rules(scene.guild.id) == []
