"""botdata's pytest plugin, the bot side (``botdata[testing]``), loaded by the ``botdata`` plugin
when discord.py and dpytest are installed.

A discord.py bot in dpytest's simulated guild, its cogs loaded on the test's ``botdata_db``
handle (both backends, see :mod:`botdata.testing.plugin`). Only Discord is simulated: botdata
runs for real.

- ``botdata_bot``: the bot with every botdata cog loaded, or only those the test names with
  ``@pytest.mark.botdata_cogs("moderation", "mybot.cogs.greet")`` (a name without a dot is one of
  botdata's cogs, one with a dot any extension; no name: a bare bot).
- ``simulated_guild``: a :class:`SimulatedGuild`: the guild, a channel, a moderator (permission
  level :data:`MOD_LEVEL` through the "Mods" role, above the members'), two members, their
  roles, and :class:`SimulatedDiscord` installed on the bot.
- :func:`say`: type a message as a member, get back what the bot sent; :func:`slash`: invoke an
  app command through a real :class:`discord.Interaction`; :func:`react`: a reaction as Discord's
  gateway reports it.

dpytest fakes Discord's HTTP API and gateway for one process, but a few calls the cogs make are
missing or wrong in dpytest 0.7 under discord.py 2.7: unbanning, banning by id, editing a
member's roles, timeout or nickname, fetching a user nobody knows (Discord answers 404), and
reaction events. :class:`SimulatedDiscord` fills those in on a bot's HTTP client (updating
dpytest's guild state like Discord would) and records them. dpytest also sends a message of
any size, where Discord refuses one over its limits: :func:`enforce_limits` makes the bot's
sends fail as Discord's do. ``example_bot.py --offline`` uses them too.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext import commands
from discord.ext.test import backend, factories

import botdata
from botdata_cogs import limits
from botdata_cogs.core import guild_prefix

#: The moderator's permission level in :class:`SimulatedGuild` (through the "Mods" role).
MOD_LEVEL = 5


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "botdata_cogs(*names): the extensions botdata_bot loads instead of every botdata cog "
        "(a name without a dot is botdata's cog botdata_cogs.<name>)",
    )


def _extensions(request: pytest.FixtureRequest) -> list[str]:
    marker = request.node.get_closest_marker("botdata_cogs")
    if marker is None:
        return ["botdata_cogs"]
    return [name if "." in name else f"botdata_cogs.{name}" for name in marker.args]


@pytest.fixture
async def botdata_bot(
    request: pytest.FixtureRequest, botdata_db: botdata.Database
) -> AsyncIterator[commands.Bot]:
    """A :class:`commands.Bot` (per-guild prefixes, every intent) in dpytest's guild with members
    "Mod", "Member" and "Other", its ``bot.botdata`` the test's handle, with botdata's cogs
    loaded (or the extensions of the ``botdata_cogs`` marker); they are unloaded afterwards.
    The bot is ready (its clock loops run: see ``botdata_clock``); its messages over Discord's
    limits fail as on Discord."""
    bot = commands.Bot(command_prefix=guild_prefix, intents=discord.Intents.all())
    bot.botdata = botdata_db  # type: ignore[attr-defined]
    await bot._async_setup_hook()
    dpytest.configure(bot, members=["Mod", "Member", "Other"])
    # dpytest never sends READY; on Discord it comes at once, and the cogs' clock loops (case and
    # AFK expiry) wait for it before their first pass.
    bot._ready.set()  # type: ignore[union-attr]
    enforce_limits(bot)
    extensions = _extensions(request)
    for name in extensions:
        await bot.load_extension(name)
    yield bot
    for name in reversed(extensions):
        await bot.unload_extension(name)
    await dpytest.empty_queue()
    assert not botdata_db.closed, "an extension closed a handle it did not open"


@dataclass
class SimulatedGuild:
    """The guild of ``simulated_guild`` and who is in it."""

    bot: commands.Bot
    guild: discord.Guild
    channel: discord.TextChannel
    mod: discord.Member
    member: discord.Member
    other: discord.Member
    mod_role: discord.Role
    member_role: discord.Role
    #: What dpytest lacks (bans, unbans, member edits, user fetches), recording the calls.
    discord_api: SimulatedDiscord


@pytest.fixture
async def simulated_guild(
    botdata_bot: commands.Bot, botdata_db: botdata.Database
) -> SimulatedGuild:
    """The guild of ``botdata_bot``: the bot's role (every permission) on top, "Mods" (the
    moderator's, permission level :data:`MOD_LEVEL` in botdata) below it, "Members" (the two
    members') below that; :class:`SimulatedDiscord` installed on the bot. Returns it."""
    config = dpytest.get_config()
    guild = config.guilds[0]
    mod, member, other = config.members
    mod_role = backend.make_role("Mods", guild, permissions=0)
    member_role = backend.make_role("Members", guild, permissions=0)
    bot_role = backend.make_role("Bot", guild, permissions=discord.Permissions.all().value)
    bot_role.position, mod_role.position, member_role.position = 20, 10, 2
    await dpytest.add_role(guild.me, bot_role)
    await dpytest.add_role(mod, mod_role)
    await dpytest.add_role(member, member_role)
    await dpytest.add_role(other, member_role)
    await botdata_db.permissions.set_level_role(guild.id, MOD_LEVEL, mod_role.id)
    channel = config.channels[0]
    assert isinstance(channel, discord.TextChannel)
    simulated = SimulatedDiscord(guild)
    simulated.install(botdata_bot)
    return SimulatedGuild(
        botdata_bot, guild, channel, mod, member, other, mod_role, member_role, simulated
    )


async def say(
    content: str, member: discord.Member, channel: discord.abc.Messageable | None = None
) -> list[discord.Message]:
    """Send ``content`` as ``member`` (in the first channel unless given); return every message
    the bot sent in reply. Command errors are not raised: the cog has replied to them."""
    target = channel if channel is not None else dpytest.get_config().channels[0]
    with contextlib.suppress(commands.CommandError):
        await dpytest.message(content, channel=target, member=member)
    sent = []
    while not dpytest.sent_queue.empty():
        sent.append(await dpytest.sent_queue.get())
    return sent


@dataclass
class SimulatedDiscord:
    """The Discord calls dpytest lacks, applied to ``guild`` and recorded.

    Bans, unbans, member edits (roles, nickname, timeout) and role creation (dpytest's fails on
    discord.py 2.6+) are applied to dpytest's guild and written to the guild's audit log, which
    ``guild.audit_logs()`` reads; :meth:`log` adds an entry for what a moderator did by hand in
    Discord's own UI. Set ``fail_unban`` to make unbans fail as a Discord outage would (HTTP 500).
    """

    guild: discord.Guild
    bans: set[int] = field(default_factory=set)
    unbans: list[int] = field(default_factory=list)
    edits: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    fail_unban: bool = False
    #: The audit log's entries as Discord's API returns them, oldest first.
    audit_log: list[dict[str, Any]] = field(default_factory=list)

    def install(self, bot: commands.Bot) -> None:
        """Route the bot's ban, unban, member edits, role creation, user fetches and audit log
        reads here."""
        _patch(
            bot.http,
            ban=self.ban,
            unban=self.unban,
            edit_member=self.edit_member,
            get_user=self.get_user,
            create_role=self.create_role,
            get_audit_logs=self.get_audit_logs,
        )

    def log(
        self,
        action: discord.AuditLogAction,
        *,
        user: discord.abc.Snowflake,
        target: discord.abc.Snowflake,
        reason: str | None = None,
        changes: list[dict[str, Any]] | None = None,
    ) -> None:
        """Add an audit log entry: ``user`` did ``action`` to ``target`` (e.g. a moderator
        banned a member in Discord's own UI)."""
        self.audit_log.append(
            {
                "id": str(factories.make_id()),
                "user_id": str(user.id),
                "target_id": str(target.id),
                "action_type": action.value,
                "reason": reason,
                "changes": changes or [],
            }
        )

    async def get_audit_logs(
        self,
        guild_id: int,
        limit: int = 100,
        before: int | None = None,
        after: int | None = None,
        user_id: int | None = None,
        action_type: int | None = None,
    ) -> dict[str, Any]:
        """The audit log as Discord returns it: newest first, filtered like Discord does."""
        entries = [
            entry
            for entry in reversed(self.audit_log)
            if (before is None or int(entry["id"]) < before)
            and (after is None or int(entry["id"]) > after)
            and (user_id is None or entry["user_id"] == str(user_id))
            and (action_type is None or entry["action_type"] == action_type)
        ]
        if after is not None:  # Discord pages forwards from `after`, oldest first
            entries.reverse()
        entries = entries[:limit]
        ids = {int(entry[key]) for entry in entries for key in ("user_id", "target_id")}
        users = [self.guild._state.get_user(user) for user in ids]
        return {
            "audit_log_entries": entries,
            "users": [factories.dict_from_user(user) for user in users if user is not None],
            "webhooks": [],
            "threads": [],
            "integrations": [],
            "application_commands": [],
            "auto_moderation_rules": [],
            "guild_scheduled_events": [],
        }

    async def create_role(
        self, guild_id: int, *, reason: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        colours = fields.get("colors") or {}
        role = backend.make_role(
            fields.get("name") or "new role",
            self.guild,
            colour=int(colours.get("primary_color") or fields.get("color") or 0),
            permissions=int(fields.get("permissions") or 0),
            hoist=bool(fields.get("hoist", False)),
            mentionable=bool(fields.get("mentionable", False)),
        )
        self.log(discord.AuditLogAction.role_create, user=self.guild.me, target=role, reason=reason)
        return factories.dict_from_role(role)

    async def get_user(self, user_id: int) -> dict[str, Any]:
        user = self.guild._state.get_user(int(user_id))
        if user is None:
            raise discord.NotFound(backend.FakeRequest(404, "Not Found"), "Unknown User")
        return factories.dict_from_user(user)

    async def ban(
        self, user_id: int, guild_id: int, *_: Any, reason: str | None = None, **__: Any
    ) -> None:
        self.bans.add(int(user_id))
        self.log(
            discord.AuditLogAction.ban,
            user=self.guild.me,
            target=discord.Object(int(user_id)),
            reason=reason,
        )
        member = self.guild.get_member(int(user_id))
        if member is not None:
            backend.delete_member(member)

    async def unban(self, user_id: int, guild_id: int, *, reason: str | None = None) -> None:
        if self.fail_unban:
            raise discord.HTTPException(backend.FakeRequest(500, "Server Error"), "unavailable")
        if int(user_id) not in self.bans:
            raise discord.NotFound(backend.FakeRequest(404, "Not Found"), "Unknown Ban")
        self.bans.discard(int(user_id))
        self.unbans.append(int(user_id))
        self.log(
            discord.AuditLogAction.unban,
            user=self.guild.me,
            target=discord.Object(int(user_id)),
            reason=reason,
        )

    async def edit_member(
        self, guild_id: int, user_id: int, *, reason: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        member = self.guild.get_member(int(user_id))
        if member is None:
            raise discord.NotFound(backend.FakeRequest(404, "Not Found"), "Unknown Member")
        self.edits.append((member.id, fields))
        self.log(
            discord.AuditLogAction.member_update
            if "roles" not in fields
            else discord.AuditLogAction.member_role_update,
            user=self.guild.me,
            target=member,
            reason=reason,
        )
        if "roles" in fields:
            roles = [self.guild.get_role(int(role_id)) for role_id in fields["roles"]]
            backend.update_member(member, roles=[role for role in roles if role is not None])
        if "nick" in fields:
            member.nick = fields["nick"] or None  # "" clears the nickname
        if "communication_disabled_until" in fields:
            until = fields["communication_disabled_until"]
            member.timed_out_until = datetime.fromisoformat(until) if until else None
        return {
            **factories.dict_from_member(member),
            "communication_disabled_until": (
                member.timed_out_until.isoformat() if member.timed_out_until else None
            ),
        }


async def react(
    member: discord.Member, message: discord.Message, emoji: str, *, add: bool = True
) -> None:
    """``member`` adds (or removes) ``emoji`` on ``message``, as Discord's gateway reports it.

    dpytest's own ``add_reaction`` sends a payload discord.py 2.7 cannot parse; this builds the
    MESSAGE_REACTION_ADD/REMOVE payload and dispatches the raw (and cached) reaction events.
    """
    parsed = discord.PartialEmoji.from_str(emoji)
    data: dict[str, Any] = {
        "type": 0,
        "user_id": str(member.id),
        "channel_id": str(message.channel.id),
        "message_id": str(message.id),
        "guild_id": str(member.guild.id),
        "emoji": {"id": str(parsed.id) if parsed.id else None, "name": parsed.name},
        "burst": False,
    }
    state = message._state
    if add:
        data["member"] = factories.dict_from_member(member)
        data["message_author_id"] = str(message.author.id)
        state.parse_message_reaction_add(data)  # type: ignore[arg-type]  # a hand-built payload
    else:
        state.parse_message_reaction_remove(data)  # type: ignore[arg-type]  # hand-built
    await dpytest.run_all_events()


def enforce_limits(bot: commands.Bot) -> None:
    """Make the bot's messages (in channels and DMs) fail as Discord fails them: content over
    2000 characters, or embeds over their limits (:mod:`botdata_cogs.limits`), get HTTP 400."""
    original = bot.http.send_message

    async def send_message(channel_id: int, *, params: Any) -> Any:
        # dpytest's fake send_message reads ``channel`` from its caller's locals.
        channel = sys._getframe(1).f_locals.get("channel")  # noqa: F841
        problem = _over_limits(_payload(params))
        if problem is not None:
            raise discord.HTTPException(backend.FakeRequest(400, "Bad Request"), problem)
        return await original(channel_id, params=params)

    _patch(bot.http, send_message=send_message)


def _patch(http: discord.http.HTTPClient, **methods: Callable[..., Awaitable[Any]]) -> None:
    """Replace methods of the bot's HTTP client (dpytest's fake one) by these."""
    for name, method in methods.items():
        setattr(http, name, method)


def _payload(params: Any) -> dict[str, Any]:
    """The JSON of a message to send (with files it travels as a multipart part)."""
    payload: dict[str, Any] | None = params.payload
    if payload is None:
        [part] = [part for part in params.multipart if part["name"] == "payload_json"]
        payload = json.loads(part["value"])
    return payload


def _over_limits(payload: dict[str, Any]) -> str | None:
    """What Discord would refuse in a message payload, or None."""
    if limits.length(payload.get("content") or "") > limits.CONTENT:
        return "Invalid Form Body: content is longer than 2000"
    embeds = [discord.Embed.from_dict(data) for data in payload.get("embeds") or []]
    for embed in embeds:
        parts = [
            (embed.title, limits.EMBED_TITLE),
            (embed.description, limits.EMBED_DESCRIPTION),
            (embed.footer.text, limits.FOOTER),
            (embed.author.name, limits.AUTHOR),
        ]
        for item in embed.fields:
            parts += [(item.name, limits.FIELD_NAME), (item.value, limits.FIELD_VALUE)]
        if len(embed.fields) > limits.EMBED_FIELDS or any(
            text and limits.length(text) > limit for text, limit in parts
        ):
            return "Invalid Form Body: an embed part is too long"
    if sum(limits.embed_length(embed) for embed in embeds) > limits.EMBED_TOTAL:
        return "Invalid Form Body: embeds are longer than 6000"
    return None


@dataclass
class Sent:
    """One reply to the interaction."""

    content: str | None
    embed: discord.Embed | None
    ephemeral: bool


@dataclass
class _Response:
    sent: list[Sent]
    done: bool = False

    def is_done(self) -> bool:
        return self.done

    async def send_message(
        self, content: str | None = None, *, embed: Any = None, ephemeral: bool = False, **_: Any
    ) -> SimpleNamespace:
        self.done = True
        self.sent.append(Sent(content, embed or None, ephemeral))
        return SimpleNamespace(resource=None)

    async def defer(self, **_: Any) -> None:
        self.done = True


@dataclass
class _Followup:
    sent: list[Sent] = field(default_factory=list)

    async def send(
        self, content: str | None = None, *, embed: Any = None, ephemeral: bool = False, **_: Any
    ) -> SimpleNamespace:
        self.sent.append(Sent(content, embed or None, ephemeral))
        return SimpleNamespace()


def _member_payload(member: discord.Member) -> dict[str, Any]:
    return {
        "roles": [str(role.id) for role in member.roles if not role.is_default()],
        "joined_at": member.joined_at.isoformat() if member.joined_at else None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": str(member.guild_permissions.value),
    }


async def slash(
    bot: commands.Bot, author: discord.Member, command: str, **options: Any
) -> list[Sent]:
    """Invoke ``/command`` (``"case show"`` for a subcommand) as ``author`` in the first channel.

    ``options``: users/members become user options, ints integer options, the rest strings.
    Returns what the bot replied.
    """
    guild = author.guild
    channel = dpytest.get_config().channels[0]
    values: list[dict[str, Any]] = []
    users: dict[str, Any] = {}
    members: dict[str, Any] = {}
    for name, value in options.items():
        if isinstance(value, discord.abc.User):
            values.append({"name": name, "type": 6, "value": str(value.id)})
            users[str(value.id)] = factories.dict_from_user(value)  # type: ignore[arg-type]
            if isinstance(value, discord.Member):
                members[str(value.id)] = _member_payload(value)
        elif isinstance(value, int):
            values.append({"name": name, "type": 4, "value": value})
        else:
            values.append({"name": name, "type": 3, "value": str(value)})
    root, *subcommands = command.split()
    for name in reversed(subcommands):
        values = [{"name": name, "type": 1, "options": values}]
    assert bot.user is not None
    payload = {
        "id": str(factories.make_id()),
        "application_id": str(bot.user.id),
        "type": 2,
        "token": "not-a-token",
        "version": 1,
        "guild_id": str(guild.id),
        "channel": {"id": str(channel.id), "type": 0},
        "channel_id": str(channel.id),
        "member": {**_member_payload(author), "user": factories.dict_from_user(author._user)},
        "data": {
            "id": str(factories.make_id()),
            "name": root,
            "type": 1,
            "options": values,
            "resolved": {"users": users, "members": members},
        },
        "attachment_size_limit": 8 * 1024 * 1024,
        "app_permissions": str(guild.me.guild_permissions.value),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "context": 0,
    }
    interaction: discord.Interaction[commands.Bot] = discord.Interaction(
        data=payload,  # type: ignore[arg-type]
        state=bot._connection,
    )
    sent: list[Sent] = []
    interaction._cs_response = _Response(sent)  # type: ignore[attr-defined]
    interaction._cs_followup = _Followup(sent)  # type: ignore[attr-defined]
    interaction._original_response = SimpleNamespace()  # type: ignore[assignment]
    await bot.tree._call(interaction)
    return sent
