"""Permission levels and access rules: ``db.permissions``.

Permission levels
    Levels 0-7 are mapped to roles in the guild configuration (``perm_level_<n>_role_id``).
    A member's level is the highest level whose role they have; the guild owner is 7; a member
    with no mapped role is 0. Served from the cached configuration.

Access rules
    A rule whitelists, blacklists or ignores one command or one module (cog) for one member,
    role, channel or category, optionally until a time. Command and module names are matched
    exactly (case-sensitive). :meth:`PermissionManager.is_allowed` evaluates the guild's
    active, unexpired rules (cached per guild, evaluated in Python) with this precedence:

    1. Levels, most specific first: member, role, channel, category; within each target type,
       rules naming the command come before rules naming its module. That gives eight levels:
       member+command, member+module, role+command, role+module, channel+command, ...,
       category+module.
    2. The first level with a rule matching the context decides (a member rule matches the
       user, a role rule any of the member's roles, a channel rule the channel, a category rule
       the channel's category). Among the matching rules of that level IGNORE beats BLACKLIST
       beats WHITELIST: IGNORE gives :attr:`Outcome.IGNORED` (the bot stays silent), BLACKLIST
       :attr:`Outcome.DENIED`, WHITELIST :attr:`Outcome.ALLOWED`.
    3. A level with WHITELIST rules none of which matches denies (reason
       :attr:`Reason.NOT_WHITELISTED`): a whitelist restricts the command or module to its
       targets of that type. Levels with only non-matching BLACKLIST/IGNORE rules are skipped.
    4. No level decides: allowed (reason :attr:`Reason.NO_RULE`).

    Examples: a member whitelist beats a role blacklist (member is more specific); a role
    blacklist of the command beats a role whitelist of its module (command before module); with
    a channel whitelist of ``fun`` in #games, ``fun`` is denied in every other channel unless a
    member or role rule decides first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from botdata.errors import (
    InvalidExpiryError,
    InvalidPermissionLevelError,
    InvalidRuleAccessError,
    InvalidRuleScopeError,
    InvalidRuleTargetError,
)
from botdata.managers.base import Manager
from botdata.managers.checks import aware, excerpt, row_id, snowflake, text
from botdata.managers.guilds import insert_guild_rows
from botdata.models import AccessType, GuildPermission, PermissionType
from botdata.models.guild import PERMISSION_LEVELS
from botdata.schemas import GuildConfigSchema, GuildPermissionSchema

if TYPE_CHECKING:
    from botdata.database import Database

#: Cache key name of a guild's rules.
RULES_KEY = "permission_rules"

#: Target types a rule may have, most specific first.
RULE_TARGETS = (
    PermissionType.MEMBER,
    PermissionType.ROLE,
    PermissionType.CHANNEL,
    PermissionType.CATEGORY,
)
OWNER_LEVEL = max(PERMISSION_LEVELS)
_NAME_LENGTH = 100
# Which access wins among the matching rules of one level.
_STRENGTH = {AccessType.WHITELIST: 0, AccessType.BLACKLIST: 1, AccessType.IGNORE: 2}


class Outcome(str, Enum):
    """What the bot does with the command."""

    ALLOWED = "allowed"
    #: Refuse, telling the user.
    DENIED = "denied"
    #: Refuse silently.
    IGNORED = "ignored"


class Reason(str, Enum):
    """Why :meth:`PermissionManager.is_allowed` decided as it did."""

    #: No rule applies: allowed.
    NO_RULE = "no_rule"
    #: ``Decision.rule`` matched the context and decided.
    RULE = "rule"
    #: Whitelist rules exist at the deciding level and none matches the context.
    NOT_WHITELISTED = "not_whitelisted"


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of :meth:`PermissionManager.is_allowed`."""

    outcome: Outcome
    reason: Reason
    #: The rule that decided (``reason`` is ``RULE``), else None.
    rule: GuildPermissionSchema | None = None

    @property
    def allowed(self) -> bool:
        """Whether the command may run."""
        return self.outcome is Outcome.ALLOWED


_NO_RULE = Decision(Outcome.ALLOWED, Reason.NO_RULE)
_NOT_WHITELISTED = Decision(Outcome.DENIED, Reason.NOT_WHITELISTED)
_OUTCOMES = {
    AccessType.WHITELIST: Outcome.ALLOWED,
    AccessType.BLACKLIST: Outcome.DENIED,
    AccessType.IGNORE: Outcome.IGNORED,
}


class PermissionManager(Manager):
    """Permission levels and access rules. Reached as ``db.permissions``."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._rules_key = self.guild_keys(RULES_KEY)

    # Levels ------------------------------------------------------------------------------------

    async def level_of(
        self, guild_id: int, role_ids: Iterable[int], *, is_owner: bool = False
    ) -> int:
        """The permission level of a member with ``role_ids``: the highest level whose role
        they have, 7 for the guild owner, 0 when no mapped role matches.

        Reads the cached configuration (no write for an unknown guild).
        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id.
        """
        if is_owner:
            return OWNER_LEVEL
        config = await self.db.guilds.config(guild_id)
        roles = set(role_ids)
        for level in reversed(PERMISSION_LEVELS):
            role_id = getattr(config, _level_field(level))
            if role_id is not None and role_id in roles:
                return level
        return 0

    async def set_level_role(
        self, guild_id: int, level: int, role_id: int, *, updated_by: int | None = None
    ) -> GuildConfigSchema:
        """Map permission ``level`` (0-7) to ``role_id`` (creating the guild if needed).

        Returns the new configuration; the cached one is dropped in every process.
        Raises :class:`~botdata.errors.InvalidPermissionLevelError` for a level outside 0-7,
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild, role or ``updated_by``.
        """
        _check_level(level)
        snowflake(role_id, "role_id")
        return await self.db.guilds.update_config(
            guild_id, updated_by=updated_by, **{_level_field(level): role_id}
        )

    async def clear_level_role(
        self, guild_id: int, level: int, *, updated_by: int | None = None
    ) -> GuildConfigSchema:
        """Unmap permission ``level`` (0-7) from its role.

        Returns the new configuration; the cached one is dropped in every process.
        Raises :class:`~botdata.errors.InvalidPermissionLevelError` for a level outside 0-7,
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild or ``updated_by`` id.
        """
        _check_level(level)
        return await self.db.guilds.update_config(
            guild_id, updated_by=updated_by, **{_level_field(level): None}
        )

    # Rules -------------------------------------------------------------------------------------

    async def add_rule(
        self,
        guild_id: int,
        *,
        access: AccessType,
        target_type: PermissionType,
        target_id: int,
        command: str | None = None,
        module: str | None = None,
        until: datetime | None = None,
        target_name: str | None = None,
        created_by: int | None = None,
    ) -> GuildPermissionSchema:
        """Whitelist, blacklist or ignore ``command`` or ``module`` (exactly one) for a member,
        role, channel or category, until ``until`` (timezone-aware, in the future) or for good.

        Creates the guild if needed; the guild's cached rules are dropped in every process.
        Returns the rule. Raises :class:`~botdata.errors.InvalidRuleAccessError` for an unknown
        access, :class:`~botdata.errors.InvalidRuleTargetError` for a target type other than
        member/role/channel/category or a ``target_name`` over 100 characters,
        :class:`~botdata.errors.InvalidRuleScopeError` unless exactly one of ``command`` and
        ``module`` is a name of 1-100 characters, :class:`~botdata.errors.UnstorableTextError`
        for a NUL or a surrogate in ``command``, ``module`` or ``target_name``,
        :class:`~botdata.errors.InvalidExpiryError` for an ``until`` that is naive or not in
        the future, :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild, target or
        ``created_by``.
        """
        snowflake(guild_id, "guild_id")
        try:
            access = AccessType(access)
        except ValueError:
            raise InvalidRuleAccessError(f"unknown access {excerpt(access)}") from None
        target_type = _rule_target(target_type)
        snowflake(target_id, "target_id")
        text(target_name, "target_name")
        text(command, "command")
        text(module, "module")
        if target_name is not None and not (
            isinstance(target_name, str) and len(target_name) <= _NAME_LENGTH
        ):
            raise InvalidRuleTargetError(
                f"target_name must be a string of at most {_NAME_LENGTH} characters"
            )
        if (command is None) == (module is None):
            raise InvalidRuleScopeError("a rule names exactly one of command and module")
        name = command if command is not None else module
        if not isinstance(name, str) or not 1 <= len(name) <= _NAME_LENGTH:
            raise InvalidRuleScopeError(
                f"command or module must be a string of 1-{_NAME_LENGTH} characters, "
                f"not {excerpt(name)}"
            )
        now = self.db.clock.now()
        if until is not None:
            until = aware(until, "until")
            if until <= now:
                raise InvalidExpiryError(f"until ({until.isoformat()}) is not in the future")
        if created_by is not None:
            snowflake(created_by, "created_by")
        async with in_transaction() as connection:
            await insert_guild_rows(guild_id, connection)
            rule = await GuildPermission.create(
                guild_id=guild_id,
                type=target_type,
                access=access,
                target_id=target_id,
                target_name=target_name,
                command=command,
                module=module,
                expires_at=until,
                created_by=created_by,
                updated_by=created_by,
                using_db=connection,
            )
        await self.cache.invalidate(self._rules_key(guild_id))
        return GuildPermissionSchema.model_validate(rule)

    async def remove_rule(
        self, guild_id: int, rule_id: int, *, removed_by: int | None = None
    ) -> bool:
        """Deactivate the guild's rule ``rule_id`` (the row stays, with ``active`` false).

        The guild's cached rules are dropped in every process. Returns whether an active rule
        of this guild was deactivated (False too for a ``rule_id`` no rule can have: anything
        but an int from 1 to 2**63 - 1). Raises :class:`~botdata.errors.InvalidSnowflakeError`
        for a bad guild or ``removed_by`` id.
        """
        snowflake(guild_id, "guild_id")
        if removed_by is not None:
            snowflake(removed_by, "removed_by")
        if row_id(rule_id) is None:
            return False
        changed = await GuildPermission.filter(id=rule_id, guild_id=guild_id, active=True).update(
            active=False, updated_by=removed_by, updated_at=self.db.clock.now()
        )
        if changed:
            await self.cache.invalidate(self._rules_key(guild_id))
        return changed > 0

    async def rules(
        self, guild_id: int, *, now: datetime | None = None
    ) -> list[GuildPermissionSchema]:
        """The guild's active rules not expired at ``now`` (default: the current time), oldest
        first (cached).

        Raises :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id and
        :class:`~botdata.errors.InvalidExpiryError` for a naive ``now``.
        """
        now = self.db.clock.now() if now is None else aware(now, "now")
        return [rule for rule in await self._cached_rules(guild_id) if _live(rule, now)]

    async def is_allowed(
        self,
        guild_id: int,
        *,
        command: str | None,
        module: str | None,
        user_id: int,
        role_ids: Iterable[int],
        channel_id: int,
        category_id: int | None,
        now: datetime | None = None,
    ) -> Decision:
        """May ``user_id`` (with ``role_ids``) run ``command`` of ``module`` in ``channel_id``
        (in ``category_id``)? Rules expired at ``now`` (default: the current time) are ignored.
        With ``command`` None only module rules count (a listener of the module, such as XP
        per message); with ``module`` None only command rules. A guild without rules costs a
        hot-cache lookup.

        Precedence (see the module documentation): the most specific level decides - member,
        then role, then channel, then category, a command rule before a module rule at each -;
        at one level IGNORE beats BLACKLIST beats WHITELIST; a level whose whitelist rules do
        not match the context denies; no rule means allowed.
        Returns a :class:`Decision`: ``outcome`` ALLOWED, DENIED (reply) or IGNORED (stay
        silent), with its ``reason`` and deciding ``rule``. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id and
        :class:`~botdata.errors.InvalidExpiryError` for a naive ``now``.
        """
        if now is not None:
            now = aware(now, "now")
        rules = await self._cached_rules(guild_id)
        if not rules:
            return _NO_RULE
        return decide(
            rules,
            command=command,
            module=module,
            user_id=user_id,
            role_ids=role_ids,
            channel_id=channel_id,
            category_id=category_id,
            now=now or self.db.clock.now(),
        )

    async def _cached_rules(self, guild_id: int) -> list[GuildPermissionSchema]:
        key = self._rules_key(snowflake(guild_id, "guild_id"))
        hit: list[GuildPermissionSchema] | None = self.cache.hot_get(key)
        if hit is not None:
            return hit

        async def load() -> list[GuildPermissionSchema]:
            now = self.db.clock.now()
            rows = await GuildPermission.filter(
                Q(expires_at=None) | Q(expires_at__gt=now), guild_id=guild_id, active=True
            ).order_by("id")
            return [GuildPermissionSchema.model_validate(row) for row in rows]

        return await self.cache.get_or_load(
            key, load, self.settings.GUILD_CONFIG_TTL, hot=True, model=GuildPermissionSchema
        )


def decide(
    rules: Sequence[GuildPermissionSchema],
    *,
    command: str | None,
    module: str | None,
    user_id: int,
    role_ids: Iterable[int],
    channel_id: int,
    category_id: int | None,
    now: datetime,
) -> Decision:
    """Evaluate ``rules`` for a context with the precedence of :meth:`PermissionManager.is_allowed`.

    Pure: no I/O. Returns the :class:`Decision`.
    """
    relevant = [
        rule
        for rule in rules
        if (
            (command is not None and rule.command == command)
            or (module is not None and rule.module == module)
        )
        and _live(rule, now)
    ]
    if not relevant:
        return _NO_RULE
    roles = set(role_ids)
    matched_target: dict[PermissionType, Callable[[int], bool]] = {
        PermissionType.MEMBER: lambda target: target == user_id,
        PermissionType.ROLE: lambda target: target in roles,
        PermissionType.CHANNEL: lambda target: target == channel_id,
        PermissionType.CATEGORY: lambda target: target == category_id,
    }
    for target_type in RULE_TARGETS:
        matches = matched_target[target_type]
        for by_command in (True, False):
            level = [
                rule
                for rule in relevant
                if rule.type is target_type and (rule.command is not None) == by_command
            ]
            matching = [rule for rule in level if matches(rule.target_id)]
            if matching:
                rule = max(matching, key=lambda r: _STRENGTH[r.access])
                return Decision(_OUTCOMES[rule.access], Reason.RULE, rule)
            if any(rule.access is AccessType.WHITELIST for rule in level):
                return _NOT_WHITELISTED
    return _NO_RULE


def _live(rule: GuildPermissionSchema, now: datetime) -> bool:
    return rule.expires_at is None or rule.expires_at > now


def _rule_target(target_type: object) -> PermissionType:
    try:
        checked: PermissionType | None = PermissionType(target_type)
    except ValueError:
        checked = None
    if checked is None or checked not in RULE_TARGETS:
        raise InvalidRuleTargetError(
            f"a rule targets a member, role, channel or category, not {excerpt(target_type)}"
            " (name the command or module with command=/module=)"
        )
    return checked


def _level_field(level: int) -> str:
    return f"perm_level_{level}_role_id"


def _check_level(level: object) -> None:
    if isinstance(level, bool) or not isinstance(level, int) or level not in PERMISSION_LEVELS:
        raise InvalidPermissionLevelError(
            f"permission level must be an int from 0 to 7, not {excerpt(level)}"
        )
