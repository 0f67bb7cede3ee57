"""Moderation actions, each recorded as a case, and the lifting of expired ones.

Commands (a level OR the Discord permission; the bot needs the permission of the action):

- ``warn @member [reason]`` (level 2 or Moderate Members)
- ``kick @member [reason]`` (level 3 or Kick Members)
- ``ban @member [reason]``, ``tempban @member <duration> [reason]``,
  ``hackban <user id> [reason]`` (ban by id, member or not), ``unban <user id> [reason]``
  (level 3 or Ban Members)
- ``timeout @member <duration> [reason]`` (at most 28 days), ``untimeout @member [reason]``
  (level 2 or Moderate Members)
- ``jail @member [duration] [reason]``, ``unjail @member [reason]`` (level 2 or Manage Roles):
  jail takes away the member's roles (the ones the bot can manage), saves them in the case
  and gives the configured jail role (``config jail``); unjail gives them back from the
  latest JAIL case. A jail with a duration is lifted when it expires. The duration is
  optional: a first word that looks like a duration (it starts with a digit: ``2000d``,
  ``0s``, ``10x``) must be a valid one or the jail is refused; any other word starts the
  reason (see :class:`botdata_cogs.core.OptionalDuration`).
- ``snippetban``/``snippetunban @member [reason]``, ``pollban``/``pollunban @member [reason]``
  (level 2): recorded only; the snippet and poll commands check them.

Durations look like ``10m``, ``2h30m``, ``1d``, ``1w``, at most five years. A reason is at
most 2000 characters ("No reason given" when left out). Every action checks role hierarchy,
posts the case in the mod-log channel when one is set and DMs the member where it makes sense
(closed DMs are fine: the reply says so; a DM too long for Discord is cut with an ellipsis).
A newer ban, tempban or unban settles a pending tempban (and likewise for timeouts), so the
expiry task does not undo it later.

Rejoining: a member who leaves and comes back gets their jail back (``on_member_join``): while
the records say jailed (``db.cases.is_jailed``) the jail role of the latest JAIL case (or the
configured one) is given again and the roles the jail took are taken again if the member got
them back; a timeout whose case has not expired nor been lifted is applied again until its
expiry when the member is not timed out. Access rules do not apply to this: it enforces records.

Expiry: every :data:`EXPIRY_INTERVAL` seconds :meth:`Moderation.lift_expired` claims the expired
tempbans, timeouts and timed jails (``db.cases.claim_due``: each is handed to one bot process),
lifts them on Discord, records it (``complete_expiry``) and writes the UNBAN, UNTIMEOUT or
UNJAIL case (moderator: the bot, reason "expired"). A lift that fails is released and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import discord
from discord.ext import commands

from botdata.models import CaseType
from botdata.schemas import CaseSchema

from .core import (
    BotdataCog,
    Duration,
    GuildContext,
    OptionalDuration,
    clock_loop,
    cog_setup,
    ensure_can_moderate,
    human,
    hybrid_command,
    level,
    level_or_permissions,
)
from .modlog import Reason, name_of, notify, post_mod_log

log = logging.getLogger(__name__)

#: The reason of a case when the moderator gives none.
NO_REASON = "No reason given"
#: The reason of the cases the expiry task writes.
EXPIRED = "expired"
#: Seconds between two runs of the expiry task.
EXPIRY_INTERVAL = 30
#: Discord's longest timeout.
MAX_TIMEOUT = timedelta(days=28)
#: The case the expiry task writes for each expiring type.
LIFTS = {
    CaseType.TEMPBAN: CaseType.UNBAN,
    CaseType.TIMEOUT: CaseType.UNTIMEOUT,
    CaseType.JAIL: CaseType.UNJAIL,
}


class NotApplicable(commands.CheckFailure):
    """The action does not apply (already jailed, not banned, no jail role ...)."""


class Moderation(BotdataCog):
    """Warnings, kicks, bans, timeouts, jail, snippet and poll bans."""

    async def cog_load(self) -> None:
        """Start the expiry task."""
        self.expiry_loop = clock_loop(
            self, EXPIRY_INTERVAL, self.lift_expired, "lifting expired cases"
        )

    async def cog_unload(self) -> None:
        """Stop the expiry task (a lift cut short is retried once its claim's lease ends)."""
        self.expiry_loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.expiry_loop

    # Warn, kick, ban -------------------------------------------------------------------------

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(2, moderate_members=True)
    async def warn(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """Warn a member."""
        ensure_can_moderate(ctx, member)
        case = await self._record(ctx, member, CaseType.WARN, reason)
        dm = await notify(member, _dm(ctx, "You were warned in {guild}.", reason))
        await self._reply(ctx, case, f"{name_of(member)} was warned", dm is not None)

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(3, kick_members=True)
    @commands.bot_has_guild_permissions(kick_members=True)
    async def kick(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """Kick a member."""
        ensure_can_moderate(ctx, member)
        delivered = await _dm_then(
            member,
            _dm(ctx, "You were kicked from {guild}.", reason),
            member.kick(reason=_audit(ctx, reason)),
        )
        case = await self._record(ctx, member, CaseType.KICK, reason)
        await self._reply(ctx, case, f"{name_of(member)} was kicked", delivered)

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(3, ban_members=True)
    @commands.bot_has_guild_permissions(ban_members=True)
    async def ban(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """Ban a member for good (use hackban for someone not in the server)."""
        await self._ban(ctx, member, CaseType.BAN, reason)

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(3, ban_members=True)
    @commands.bot_has_guild_permissions(ban_members=True)
    async def tempban(
        self,
        ctx: GuildContext,
        member: discord.Member,
        duration: Annotated[timedelta, Duration],
        *,
        reason: Reason = NO_REASON,
    ) -> None:
        """Ban a member for a while (10m, 2h, 1d, 1w ...); they are unbanned when it ends."""
        await self._ban(ctx, member, CaseType.TEMPBAN, reason, duration=duration)

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(3, ban_members=True)
    @commands.bot_has_guild_permissions(ban_members=True)
    async def hackban(
        self, ctx: GuildContext, user: discord.User, *, reason: Reason = NO_REASON
    ) -> None:
        """Ban a user by id, whether or not they are in the server."""
        await self._ban(ctx, user, CaseType.HACKBAN, reason)

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(3, ban_members=True)
    @commands.bot_has_guild_permissions(ban_members=True)
    async def unban(
        self, ctx: GuildContext, user: discord.User, *, reason: Reason = NO_REASON
    ) -> None:
        """Unban a user by id."""
        await self._ban(ctx, user, CaseType.UNBAN, reason)

    async def _ban(
        self,
        ctx: GuildContext,
        user: discord.Member | discord.User,
        case_type: CaseType,
        reason: str,
        *,
        duration: timedelta | None = None,
    ) -> None:
        """Ban (BAN, TEMPBAN: DM first; HACKBAN: by id, no DM) or unban (UNBAN) ``user``,
        settle a pending tempban, record the case and reply.

        Raises :class:`NotApplicable` when unbanning someone not banned, and what Discord and
        the database raise.
        """
        guild = ctx.guild
        ensure_can_moderate(ctx, guild.get_member(user.id) or user)
        audit = _audit(ctx, reason)
        time = f" for {human(duration)}" if duration else ""
        delivered: bool | None = None
        if case_type is CaseType.UNBAN:
            try:
                await guild.unban(user, reason=audit)
            except discord.NotFound:
                raise NotApplicable(f"{name_of(user)} is not banned.") from None
        elif case_type is CaseType.HACKBAN:
            await guild.ban(discord.Object(user.id), reason=audit)
        else:
            text = _dm(ctx, f"You were banned from {{guild}}{time}.", reason)
            delivered = await _dm_then(user, text, guild.ban(user, reason=audit))
        await self._settle(guild.id, user.id, CaseType.TEMPBAN)
        case = await self._record(ctx, user, case_type, reason, duration=duration)
        done = "unbanned" if case_type is CaseType.UNBAN else f"banned{time}"
        await self._reply(ctx, case, f"{name_of(user)} was {done}", delivered)

    # Timeout ---------------------------------------------------------------------------------

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(2, moderate_members=True)
    @commands.bot_has_guild_permissions(moderate_members=True)
    async def timeout(
        self,
        ctx: GuildContext,
        member: discord.Member,
        duration: Annotated[timedelta, Duration],
        *,
        reason: Reason = NO_REASON,
    ) -> None:
        """Time a member out (at most 28 days): they cannot talk until it ends."""
        if duration > MAX_TIMEOUT:
            raise commands.BadArgument("A timeout lasts at most 28 days.")
        ensure_can_moderate(ctx, member)
        await member.timeout(duration, reason=_audit(ctx, reason))
        await self._settle(ctx.guild.id, member.id, CaseType.TIMEOUT)
        case = await self._record(ctx, member, CaseType.TIMEOUT, reason, duration=duration)
        dm = await notify(
            member, _dm(ctx, f"You were timed out in {{guild}} for {human(duration)}.", reason)
        )
        await self._reply(
            ctx, case, f"{name_of(member)} was timed out for {human(duration)}", dm is not None
        )

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(2, moderate_members=True)
    @commands.bot_has_guild_permissions(moderate_members=True)
    async def untimeout(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """End a member's timeout."""
        ensure_can_moderate(ctx, member)
        if not member.is_timed_out():
            raise NotApplicable(f"{name_of(member)} is not timed out.")
        await member.timeout(None, reason=_audit(ctx, reason))
        await self._settle(ctx.guild.id, member.id, CaseType.TIMEOUT)
        case = await self._record(ctx, member, CaseType.UNTIMEOUT, reason)
        dm = await notify(member, _dm(ctx, "Your timeout in {guild} was lifted.", reason))
        await self._reply(ctx, case, f"{name_of(member)}'s timeout was lifted", dm is not None)

    # Jail ------------------------------------------------------------------------------------

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(2, manage_roles=True)
    @commands.bot_has_guild_permissions(manage_roles=True)
    async def jail(
        self,
        ctx: GuildContext,
        member: discord.Member,
        duration: Annotated[timedelta | None, OptionalDuration] = None,
        *,
        reason: Reason = NO_REASON,
    ) -> None:
        """Take a member's roles and give the jail role, for good or for a duration."""
        ensure_can_moderate(ctx, member)
        config = await self.db.guilds.config(ctx.guild.id)
        jail_role = ctx.guild.get_role(config.jail_role_id or 0)
        if jail_role is None:
            raise NotApplicable("No jail role is set: use `config jail <role> <channel>`.")
        if not jail_role.is_assignable():
            raise NotApplicable(f"I cannot give {jail_role.name}: it is above my top role.")
        if await self.db.cases.is_jailed(ctx.guild.id, member.id):
            raise NotApplicable(f"{name_of(member)} is already jailed.")
        saved = [role for role in member.roles if role.is_assignable() and role != jail_role]
        kept = [role for role in member.roles if not role.is_default() and role not in saved]
        await member.edit(roles=[*kept, jail_role], reason=_audit(ctx, reason))
        case = await self._record(
            ctx,
            member,
            CaseType.JAIL,
            reason,
            duration=duration,
            user_roles=[role.id for role in saved],
            metadata={"jail_role_id": jail_role.id},
        )
        time = f" for {human(duration)}" if duration else ""
        channel = config.jail_channel_id
        where = f" You can still talk in <#{channel}>." if channel else ""
        dm = await notify(member, _dm(ctx, f"You were jailed in {{guild}}{time}.{where}", reason))
        await self._reply(ctx, case, f"{name_of(member)} was jailed{time}", dm is not None)

    @hybrid_command()
    @commands.guild_only()
    @level_or_permissions(2, manage_roles=True)
    @commands.bot_has_guild_permissions(manage_roles=True)
    async def unjail(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """Release a member from jail, giving back the roles the jail took."""
        ensure_can_moderate(ctx, member)
        if not await self.db.cases.is_jailed(ctx.guild.id, member.id):
            raise NotApplicable(f"{name_of(member)} is not jailed.")
        [jailed] = await self.db.cases.search(
            ctx.guild.id, user_id=member.id, case_type=CaseType.JAIL, active=True, limit=1
        )
        await _restore(member, jailed, _audit(ctx, reason))
        if jailed.expires_at is not None:
            await self.db.cases.complete_expiry(ctx.guild.id, jailed.number)
        case = await self._record(ctx, member, CaseType.UNJAIL, reason)
        dm = await notify(member, _dm(ctx, "You were released from jail in {guild}.", reason))
        await self._reply(ctx, case, f"{name_of(member)} was released", dm is not None)

    # Snippet and poll bans -------------------------------------------------------------------

    @hybrid_command()
    @commands.guild_only()
    @level(2)
    async def snippetban(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """Stop a member from using snippets."""
        await self._restrict(ctx, member, CaseType.SNIPPETBAN, reason)

    @hybrid_command()
    @commands.guild_only()
    @level(2)
    async def snippetunban(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """Let a member use snippets again."""
        await self._restrict(ctx, member, CaseType.SNIPPETUNBAN, reason)

    @hybrid_command()
    @commands.guild_only()
    @level(2)
    async def pollban(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """Stop a member from making polls."""
        await self._restrict(ctx, member, CaseType.POLLBAN, reason)

    @hybrid_command()
    @commands.guild_only()
    @level(2)
    async def pollunban(
        self, ctx: GuildContext, member: discord.Member, *, reason: Reason = NO_REASON
    ) -> None:
        """Let a member make polls again."""
        await self._restrict(ctx, member, CaseType.POLLUNBAN, reason)

    async def _restrict(
        self, ctx: GuildContext, member: discord.Member, case_type: CaseType, reason: str
    ) -> None:
        """Record a snippet or poll ban or unban, refusing one that changes nothing."""
        ensure_can_moderate(ctx, member)
        what, banned, ban = {
            CaseType.SNIPPETBAN: ("snippets", self.db.cases.is_snippet_banned, True),
            CaseType.SNIPPETUNBAN: ("snippets", self.db.cases.is_snippet_banned, False),
            CaseType.POLLBAN: ("polls", self.db.cases.is_poll_banned, True),
            CaseType.POLLUNBAN: ("polls", self.db.cases.is_poll_banned, False),
        }[case_type]
        if await banned(ctx.guild.id, member.id) == ban:
            state = "already" if ban else "not"
            raise NotApplicable(f"{name_of(member)} is {state} banned from {what}.")
        case = await self._record(ctx, member, case_type, reason)
        text = (
            f"You can no longer use {what} in {{guild}}."
            if ban
            else (f"You can use {what} in {{guild}} again.")
        )
        dm = await notify(member, _dm(ctx, text, reason))
        done = f"banned from {what}" if ban else f"allowed {what} again"
        await self._reply(ctx, case, f"{name_of(member)} was {done}", dm is not None)

    # Rejoining -------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        """Put a jail and a timeout the records still hold back on a member who rejoined.

        Discord refusing (missing permission, role above the bot) is logged, not raised.
        """
        try:
            await self._rejail(member)
            await self._retime_out(member)
        except discord.HTTPException as exc:
            log.warning(
                "guild %s: cannot restore the jail or timeout of %s: %s",
                member.guild.id,
                member.id,
                exc,
            )

    async def _rejail(self, member: discord.Member) -> None:
        """Give the jail role again (and take the roles the jail took) if the member is jailed."""
        guild = member.guild
        if not await self.db.cases.is_jailed(guild.id, member.id):
            return
        [jailed] = await self.db.cases.search(
            guild.id, user_id=member.id, case_type=CaseType.JAIL, active=True, limit=1
        )
        config = await self.db.guilds.config(guild.id)
        jail_role = guild.get_role((jailed.metadata or {}).get("jail_role_id") or 0)
        jail_role = jail_role or guild.get_role(config.jail_role_id or 0)
        if jail_role is None or not jail_role.is_assignable():
            log.warning("guild %s: no jail role to give back to %s", guild.id, member.id)
            return
        taken = set(jailed.user_roles)
        kept = [
            role
            for role in member.roles
            if not role.is_default()
            and role != jail_role
            and (role.id not in taken or not role.is_assignable())
        ]
        await member.edit(
            roles=[*kept, jail_role], reason=f"Case #{jailed.number}: jailed, rejoined"
        )

    async def _retime_out(self, member: discord.Member) -> None:
        """Time the member out again until their latest timeout's expiry, if it is still on."""
        if member.is_timed_out():
            return
        guild_id = member.guild.id
        latest = await self.db.cases.search(
            guild_id, user_id=member.id, case_type=CaseType.TIMEOUT, active=True, limit=1
        )
        if not latest:
            return
        timeout = latest[0]
        if timeout.expires_at is None or timeout.expires_at <= self.db.clock.now():
            return
        lifted = await self.db.cases.search(
            guild_id, user_id=member.id, case_type=CaseType.UNTIMEOUT, active=True, limit=1
        )
        if lifted and lifted[0].number > timeout.number:
            return
        await member.timeout(
            timeout.expires_at, reason=f"Case #{timeout.number}: timed out, rejoined"
        )

    # Expiry ----------------------------------------------------------------------------------

    async def lift_expired(self, now: datetime | None = None) -> list[CaseSchema]:
        """Claim the cases expired at ``now`` (default: the current time) and lift each.

        A case of a guild this bot process does not see, or whose lift fails, is released for
        a later run. Returns the cases lifted. Raises the database's errors (claim, release).
        """
        claimed = await self.db.cases.claim_due(now or self.db.clock.now())
        return [case for case in claimed if await self._lift(case)]

    async def _lift(self, case: CaseSchema) -> bool:
        """Lift one claimed case; True when done here."""
        guild = self.bot.get_guild(case.guild_id)
        if guild is None:  # another process's guild, or the bot left it
            await self.db.cases.release(case.guild_id, case.number)
            return False
        try:
            await self._undo(guild, case)
        except Exception:
            log.exception("guild %s: lifting case %s failed; retried later", guild.id, case.number)
            await self.db.cases.release(case.guild_id, case.number)
            return False
        if not await self.db.cases.complete_expiry(case.guild_id, case.number):
            return False  # finished by another process after this claim's lease ran out
        follow = LIFTS.get(case.type) if case.type else None
        if follow is not None:
            assert self.bot.user is not None
            lifted = await self.db.cases.create(
                guild.id,
                case.user_id,
                self.bot.user.id,
                follow,
                EXPIRED,
                metadata={"expired_case": case.number},
            )
            await post_mod_log(self.db, guild, lifted)
        return True

    async def _undo(self, guild: discord.Guild, case: CaseSchema) -> None:
        """Carry out the end of ``case`` on Discord (nothing for custom types)."""
        reason = f"Case #{case.number} expired"
        if case.type is CaseType.TEMPBAN:
            with contextlib.suppress(discord.NotFound):  # unbanned already
                await guild.unban(discord.Object(case.user_id), reason=reason)
            return
        if case.type not in (CaseType.TIMEOUT, CaseType.JAIL):
            return
        member = guild.get_member(case.user_id)
        if member is None:
            try:
                member = await guild.fetch_member(case.user_id)
            except discord.NotFound:
                return  # left the server: nothing to lift
        if case.type is CaseType.JAIL:
            await _restore(member, case, reason)
        elif member.is_timed_out():
            await member.timeout(None, reason=reason)

    # Helpers ---------------------------------------------------------------------------------

    async def _record(
        self,
        ctx: GuildContext,
        user: discord.abc.User,
        case_type: CaseType,
        reason: str,
        *,
        duration: timedelta | None = None,
        user_roles: Sequence[int] = (),
        metadata: dict[str, Any] | None = None,
    ) -> CaseSchema:
        """Create the case (by the author, in the mod log too) and return it."""
        case = await self.db.cases.create(
            ctx.guild.id,
            user.id,
            ctx.author.id,
            case_type,
            reason,
            duration=duration,
            user_roles=user_roles,
            metadata=metadata,
        )
        await post_mod_log(self.db, ctx.guild, case)
        return case

    async def _settle(self, guild_id: int, user_id: int, case_type: CaseType) -> None:
        """Mark the member's latest pending ``case_type`` expiry as done: an action replaced it."""
        latest = await self.db.cases.search(
            guild_id, user_id=user_id, case_type=case_type, active=True, limit=1
        )
        if latest and latest[0].expires_at is not None:
            await self.db.cases.complete_expiry(guild_id, latest[0].number)

    async def _reply(
        self, ctx: GuildContext, case: CaseSchema, done: str, delivered: bool | None
    ) -> None:
        """``Case #n: <done>.``, saying so when the member could not be DMed."""
        note = " I could not DM them." if delivered is False else ""
        await self.send(ctx, f"Case #{case.number}: {done}.{note}")


async def _restore(member: discord.Member, jailed: CaseSchema, reason: str) -> None:
    """Give back the roles saved in the JAIL case (those still there) and take its jail role."""
    jail_role_id = (jailed.metadata or {}).get("jail_role_id")
    saved = [member.guild.get_role(role_id) for role_id in jailed.user_roles]
    restore = [role for role in saved if role is not None and role.is_assignable()]
    kept = [role for role in member.roles if not role.is_default() and role.id != jail_role_id]
    await member.edit(roles=list(dict.fromkeys([*kept, *restore])), reason=reason)


async def _dm_then(
    member: discord.Member | discord.User, text: str, action: Awaitable[None]
) -> bool:
    """DM the member, then run ``action`` (kick, ban: afterwards a DM may not reach them).

    The DM is deleted again when the action fails. Returns whether the DM was delivered.
    """
    dm = await notify(member, text)
    try:
        await action
    except BaseException:
        if dm is not None:
            with contextlib.suppress(discord.HTTPException):
                await dm.delete()
        raise
    return dm is not None


def _dm(ctx: GuildContext, text: str, reason: str) -> str:
    """A DM: ``text`` with ``{guild}`` as the server's name, then the reason."""
    guild = f"**{discord.utils.escape_markdown(ctx.guild.name)}**"
    return f"{text.format(guild=guild)} Reason: {reason}"


def _audit(ctx: GuildContext, reason: str) -> str:
    """The audit-log reason: who did it and why (Discord keeps 512 characters)."""
    return f"{ctx.author} ({ctx.author.id}): {reason}"[:512]


setup, teardown = cog_setup(Moderation)
