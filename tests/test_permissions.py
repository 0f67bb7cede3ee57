"""db.permissions: permission levels and access rules with their precedence (both backends)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import botdata
from botdata.errors import (
    InvalidExpiryError,
    InvalidPermissionLevelError,
    InvalidRuleAccessError,
    InvalidRuleScopeError,
    InvalidRuleTargetError,
    InvalidSnowflakeError,
)
from botdata.managers.permissions import Decision, Outcome, Reason
from botdata.models import AccessType, Guild, GuildConfig, GuildPermission, PermissionType
from botdata.schemas import GuildPermissionSchema

GUILD = 1 << 40
OTHER_GUILD = (1 << 40) + 1
USER = 1 << 43
OTHER_USER = (1 << 43) + 1
ROLE_A = 1 << 42
ROLE_B = (1 << 42) + 1
CHANNEL = 1 << 41
OTHER_CHANNEL = (1 << 41) + 1
CATEGORY = 1 << 44
OTHER_CATEGORY = (1 << 44) + 1

W, B, IGN = AccessType.WHITELIST, AccessType.BLACKLIST, AccessType.IGNORE
MEMBER, ROLE = PermissionType.MEMBER, PermissionType.ROLE
CHAN, CAT = PermissionType.CHANNEL, PermissionType.CATEGORY


async def rule(
    db: botdata.Database,
    access: AccessType,
    target_type: PermissionType,
    target_id: int,
    *,
    command: str | None = None,
    module: str | None = None,
    **extra: Any,
) -> GuildPermissionSchema:
    return await db.permissions.add_rule(
        GUILD,
        access=access,
        target_type=target_type,
        target_id=target_id,
        command=command,
        module=module,
        **extra,
    )


async def check(
    db: botdata.Database,
    *,
    command: str = "ban",
    module: str | None = "moderation",
    user_id: int = USER,
    role_ids: tuple[int, ...] = (ROLE_A,),
    channel_id: int = CHANNEL,
    category_id: int | None = CATEGORY,
    now: datetime | None = None,
) -> Decision:
    return await db.permissions.is_allowed(
        GUILD,
        command=command,
        module=module,
        user_id=user_id,
        role_ids=role_ids,
        channel_id=channel_id,
        category_id=category_id,
        now=now,
    )


# levels -----------------------------------------------------------------------------------------


async def test_level_of(botdata_db: botdata.Database) -> None:
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_A]) == 0  # unknown guild: defaults
    assert await Guild.all().count() == 0
    await botdata_db.permissions.set_level_role(GUILD, 2, ROLE_A)
    await botdata_db.permissions.set_level_role(GUILD, 5, ROLE_B, updated_by=USER)
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_A]) == 2
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_B]) == 5
    assert await botdata_db.permissions.level_of(GUILD, {ROLE_A, ROLE_B}) == 5  # highest wins
    assert await botdata_db.permissions.level_of(GUILD, []) == 0
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_B + 7]) == 0
    assert await botdata_db.permissions.level_of(GUILD, [], is_owner=True) == 7
    assert await botdata_db.permissions.level_of(OTHER_GUILD, [ROLE_B]) == 0
    row = await GuildConfig.get(guild_id=GUILD)
    assert (row.perm_level_2_role_id, row.perm_level_5_role_id, row.updated_by) == (
        ROLE_A,
        ROLE_B,
        USER,
    )


async def test_level_changes_are_seen_immediately(botdata_db: botdata.Database) -> None:
    await botdata_db.permissions.set_level_role(GUILD, 3, ROLE_A)
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_A]) == 3  # cached now
    config = await botdata_db.permissions.set_level_role(GUILD, 6, ROLE_A)
    assert config.perm_level_6_role_id == ROLE_A
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_A]) == 6
    config = await botdata_db.permissions.clear_level_role(GUILD, 6)
    assert config.perm_level_6_role_id is None
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_A]) == 3
    await botdata_db.permissions.clear_level_role(GUILD, 3)
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_A]) == 0


async def test_level_zero_and_seven_roles(botdata_db: botdata.Database) -> None:
    await botdata_db.permissions.set_level_role(GUILD, 0, ROLE_A)
    await botdata_db.permissions.set_level_role(GUILD, 7, ROLE_B)
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_A]) == 0
    assert await botdata_db.permissions.level_of(GUILD, [ROLE_A, ROLE_B]) == 7


@pytest.mark.parametrize("level", [-1, 8, True, "3", 2.0, None])
async def test_bad_level_is_refused(botdata_db: botdata.Database, level: Any) -> None:
    with pytest.raises(InvalidPermissionLevelError):
        await botdata_db.permissions.set_level_role(GUILD, level, ROLE_A)
    with pytest.raises(InvalidPermissionLevelError):
        await botdata_db.permissions.clear_level_role(GUILD, level)
    assert await Guild.all().count() == 0
    assert await GuildConfig.all().count() == 0


async def test_bad_role_is_refused(botdata_db: botdata.Database) -> None:
    await botdata_db.permissions.set_level_role(GUILD, 1, ROLE_A)
    before = await GuildConfig.all().values()
    for bad in (None, 0, 99, "123", True):
        with pytest.raises(InvalidSnowflakeError):
            await botdata_db.permissions.set_level_role(GUILD, 1, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.permissions.set_level_role(GUILD, 1, ROLE_B, updated_by=9)
    assert await GuildConfig.all().values() == before


# rules: writing ---------------------------------------------------------------------------------


async def test_add_rule_returns_and_lists_it(botdata_db: botdata.Database) -> None:
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    added = await rule(
        botdata_db,
        B,
        ROLE,
        ROLE_A,
        command="ban",
        until=until,
        target_name="Muted",
        created_by=USER,
    )
    assert (added.guild_id, added.type, added.access, added.target_id) == (GUILD, ROLE, B, ROLE_A)
    assert (added.command, added.module, added.target_name, added.active) == (
        "ban",
        None,
        "Muted",
        True,
    )
    assert added.expires_at == until
    assert await botdata_db.permissions.rules(GUILD) == [added]
    assert await Guild.filter(id=GUILD).count() == 1  # created on the way
    assert (await GuildPermission.get(id=added.id)).created_by == USER
    module_rule = await rule(botdata_db, W, CHAN, CHANNEL, module="fun")
    assert await botdata_db.permissions.rules(GUILD) == [added, module_rule]
    assert await botdata_db.permissions.rules(OTHER_GUILD) == []


async def test_access_and_target_given_as_strings(botdata_db: botdata.Database) -> None:
    added = await botdata_db.permissions.add_rule(
        GUILD,
        access="ignore",
        target_type="channel",
        target_id=CHANNEL,
        module="fun",  # type: ignore[arg-type]
    )
    assert (added.access, added.type) == (IGN, CHAN)


async def test_remove_rule(botdata_db: botdata.Database) -> None:
    added = await rule(botdata_db, B, MEMBER, USER, command="ban")
    assert (await check(botdata_db)).outcome is Outcome.DENIED  # rules cached now
    assert await botdata_db.permissions.remove_rule(OTHER_GUILD, added.id) is False
    assert await botdata_db.permissions.remove_rule(GUILD, added.id, removed_by=OTHER_USER) is True
    assert await botdata_db.permissions.remove_rule(GUILD, added.id) is False
    assert await botdata_db.permissions.rules(GUILD) == []
    assert (await check(botdata_db)).outcome is Outcome.ALLOWED
    row = await GuildPermission.get(id=added.id)
    assert (row.active, row.updated_by) == (False, OTHER_USER)
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.permissions.remove_rule(GUILD, added.id, removed_by=3)


async def test_rules_leave_out_expired_ones(botdata_db: botdata.Database) -> None:
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    lasting = await rule(botdata_db, B, MEMBER, USER, command="kick")
    banning = await rule(botdata_db, B, MEMBER, USER, command="ban", until=soon)
    assert len(await botdata_db.permissions.rules(GUILD)) == 2
    later = soon + timedelta(seconds=1)
    assert (await check(botdata_db, now=later)).outcome is Outcome.ALLOWED  # ban's rule expired
    assert (await check(botdata_db, command="kick", now=later)).outcome is Outcome.DENIED
    # rules() leaves it out from its expiry on (at ``now``; by default the current time)
    assert await botdata_db.permissions.rules(GUILD) == [lasting, banning]
    assert await botdata_db.permissions.rules(GUILD, now=soon - timedelta(microseconds=1)) == [
        lasting,
        banning,
    ]
    assert await botdata_db.permissions.rules(GUILD, now=soon) == [lasting]
    assert await botdata_db.permissions.rules(GUILD, now=later) == [lasting]
    with pytest.raises(InvalidExpiryError):
        await botdata_db.permissions.rules(GUILD, now=later.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"target_type": PermissionType.COMMAND}, InvalidRuleTargetError),
        ({"target_type": PermissionType.MODULE}, InvalidRuleTargetError),
        ({"target_type": "user"}, InvalidRuleTargetError),
        ({"target_name": "n" * 101}, InvalidRuleTargetError),
        ({"target_name": 5}, InvalidRuleTargetError),
        ({"access": "allow"}, InvalidRuleAccessError),
        ({"access": None}, InvalidRuleAccessError),
        ({"command": None}, InvalidRuleScopeError),
        ({"module": "moderation"}, InvalidRuleScopeError),
        ({"command": ""}, InvalidRuleScopeError),
        ({"command": "c" * 101}, InvalidRuleScopeError),
        ({"command": None, "module": 3}, InvalidRuleScopeError),
        ({"until": datetime.now(timezone.utc) - timedelta(seconds=1)}, InvalidExpiryError),
        ({"until": datetime.now() + timedelta(hours=1)}, InvalidExpiryError),
        ({"until": "tomorrow"}, InvalidExpiryError),
        ({"target_id": 12}, InvalidSnowflakeError),
        ({"target_id": None}, InvalidSnowflakeError),
        ({"created_by": -1}, InvalidSnowflakeError),
    ],
)
async def test_bad_rule_is_refused(
    botdata_db: botdata.Database, fields: dict[str, Any], error: type[Exception]
) -> None:
    arguments: dict[str, Any] = {
        "access": B,
        "target_type": MEMBER,
        "target_id": USER,
        "command": "ban",
        **fields,
    }
    with pytest.raises(error):
        await botdata_db.permissions.add_rule(GUILD, **arguments)
    assert await GuildPermission.all().count() == 0
    assert await Guild.all().count() == 0


async def test_bad_guild_is_refused(botdata_db: botdata.Database) -> None:
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.permissions.add_rule(
            4, access=B, target_type=MEMBER, target_id=USER, command="ban"
        )
    with pytest.raises(InvalidSnowflakeError):
        await botdata_db.permissions.rules(4)
    assert await GuildPermission.all().count() == 0


# rules: precedence ------------------------------------------------------------------------------


async def test_no_rules_allows(botdata_db: botdata.Database) -> None:
    decision = await check(botdata_db)
    assert decision == Decision(Outcome.ALLOWED, Reason.NO_RULE, None)
    assert decision.allowed
    assert await Guild.all().count() == 0


async def test_rules_of_other_commands_do_not_apply(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, B, MEMBER, USER, command="kick")
    await rule(botdata_db, B, MEMBER, USER, module="fun")
    assert (await check(botdata_db)).reason is Reason.NO_RULE
    # a command without a module matches no module rule
    assert (await check(botdata_db, command="ping", module=None)).outcome is Outcome.ALLOWED


async def test_blacklist_denies_only_its_target(botdata_db: botdata.Database) -> None:
    added = await rule(botdata_db, B, MEMBER, USER, command="ban")
    decision = await check(botdata_db)
    assert decision == Decision(Outcome.DENIED, Reason.RULE, added)
    assert not decision.allowed
    assert (await check(botdata_db, user_id=OTHER_USER)).outcome is Outcome.ALLOWED


async def test_ignore_is_silent(botdata_db: botdata.Database) -> None:
    added = await rule(botdata_db, IGN, CHAN, CHANNEL, module="moderation")
    assert await check(botdata_db) == Decision(Outcome.IGNORED, Reason.RULE, added)
    assert (await check(botdata_db, channel_id=OTHER_CHANNEL)).outcome is Outcome.ALLOWED


async def test_module_rule_covers_its_commands(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, B, ROLE, ROLE_A, module="moderation")
    assert (await check(botdata_db, command="ban")).outcome is Outcome.DENIED
    assert (await check(botdata_db, command="kick")).outcome is Outcome.DENIED
    assert (await check(botdata_db, command="meme", module="fun")).outcome is Outcome.ALLOWED


async def test_member_beats_role(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, B, ROLE, ROLE_A, command="ban")
    allowed = await rule(botdata_db, W, MEMBER, USER, command="ban")
    assert await check(botdata_db) == Decision(Outcome.ALLOWED, Reason.RULE, allowed)
    assert (await check(botdata_db, user_id=OTHER_USER)).outcome is Outcome.DENIED


async def test_role_beats_channel(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, B, CHAN, CHANNEL, command="ban")
    await rule(botdata_db, W, ROLE, ROLE_A, command="ban")
    assert (await check(botdata_db)).outcome is Outcome.ALLOWED
    assert (await check(botdata_db, role_ids=(ROLE_B,))).outcome is Outcome.DENIED


async def test_channel_beats_category(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, IGN, CAT, CATEGORY, command="ban")
    await rule(botdata_db, W, CHAN, CHANNEL, command="ban")
    assert (await check(botdata_db)).outcome is Outcome.ALLOWED
    # another channel of the category: the channel whitelist does not match -> not whitelisted
    decision = await check(botdata_db, channel_id=OTHER_CHANNEL)
    assert decision == Decision(Outcome.DENIED, Reason.NOT_WHITELISTED, None)


async def test_category_rule(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, B, CAT, CATEGORY, module="moderation")
    assert (await check(botdata_db)).outcome is Outcome.DENIED
    assert (await check(botdata_db, category_id=OTHER_CATEGORY)).outcome is Outcome.ALLOWED
    assert (await check(botdata_db, category_id=None)).outcome is Outcome.ALLOWED


async def test_command_rule_beats_module_rule_of_same_target_type(
    botdata_db: botdata.Database,
) -> None:
    await rule(botdata_db, B, ROLE, ROLE_A, module="moderation")
    await rule(botdata_db, W, ROLE, ROLE_A, command="warn")
    assert (await check(botdata_db, command="warn")).outcome is Outcome.ALLOWED
    assert (await check(botdata_db, command="ban")).outcome is Outcome.DENIED
    await rule(botdata_db, W, ROLE, ROLE_B, module="fun")
    await rule(botdata_db, B, ROLE, ROLE_B, command="meme")
    assert (await check(botdata_db, command="meme", module="fun", role_ids=(ROLE_B,))).outcome is (
        Outcome.DENIED
    )
    assert (await check(botdata_db, command="joke", module="fun", role_ids=(ROLE_B,))).outcome is (
        Outcome.ALLOWED
    )


async def test_target_type_beats_command_over_module(botdata_db: botdata.Database) -> None:
    # a member's module rule is more specific than a role's command rule
    await rule(botdata_db, W, ROLE, ROLE_A, command="ban")
    await rule(botdata_db, B, MEMBER, USER, module="moderation")
    assert (await check(botdata_db)).outcome is Outcome.DENIED


async def test_blacklist_beats_whitelist_at_one_level(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, W, ROLE, ROLE_A, command="ban")
    blocking = await rule(botdata_db, B, ROLE, ROLE_B, command="ban")
    assert await check(botdata_db, role_ids=(ROLE_A, ROLE_B)) == Decision(
        Outcome.DENIED, Reason.RULE, blocking
    )
    assert (await check(botdata_db, role_ids=(ROLE_A,))).outcome is Outcome.ALLOWED


async def test_ignore_beats_blacklist_at_one_level(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, B, ROLE, ROLE_A, command="ban")
    silent = await rule(botdata_db, IGN, ROLE, ROLE_B, command="ban")
    await rule(botdata_db, W, ROLE, ROLE_B, command="ban")
    assert await check(botdata_db, role_ids=(ROLE_A, ROLE_B)) == Decision(
        Outcome.IGNORED, Reason.RULE, silent
    )


async def test_whitelist_restricts_to_its_targets(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, W, MEMBER, USER, command="ban")
    assert (await check(botdata_db)).outcome is Outcome.ALLOWED
    assert await check(botdata_db, user_id=OTHER_USER) == Decision(
        Outcome.DENIED, Reason.NOT_WHITELISTED, None
    )
    # unrelated commands stay allowed
    assert (await check(botdata_db, user_id=OTHER_USER, command="kick")).outcome is Outcome.ALLOWED


async def test_unmatched_blacklist_does_not_stop_lower_levels(botdata_db: botdata.Database) -> None:
    await rule(botdata_db, B, MEMBER, OTHER_USER, command="ban")
    await rule(botdata_db, IGN, CHAN, CHANNEL, command="ban")
    assert (await check(botdata_db)).outcome is Outcome.IGNORED


async def test_expired_rule_is_ignored(botdata_db: botdata.Database) -> None:
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    await rule(botdata_db, B, MEMBER, USER, command="ban", until=until)
    await rule(botdata_db, W, CHAN, OTHER_CHANNEL, command="ban", until=until)
    assert (await check(botdata_db)).outcome is Outcome.DENIED
    assert (await check(botdata_db, now=until - timedelta(seconds=1))).outcome is Outcome.DENIED
    assert (await check(botdata_db, now=until)).outcome is Outcome.ALLOWED
    assert (await check(botdata_db, now=until + timedelta(days=1))).reason is Reason.NO_RULE


async def test_naive_now_is_refused(botdata_db: botdata.Database) -> None:
    with pytest.raises(InvalidExpiryError):
        await check(botdata_db, now=datetime.now())


async def test_new_rule_is_seen_immediately(botdata_db: botdata.Database) -> None:
    assert (await check(botdata_db)).outcome is Outcome.ALLOWED  # empty rule list cached
    await rule(botdata_db, B, MEMBER, USER, command="ban")
    assert (await check(botdata_db)).outcome is Outcome.DENIED
