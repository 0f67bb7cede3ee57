"""Running the cogs without Discord, in dpytest's simulated guild (needs the ``dpytest`` package).

dpytest fakes Discord's HTTP API and gateway for one process, but a few calls the cogs make are
missing or wrong in dpytest 0.7 under discord.py 2.7: unbanning, banning by id, editing a
member's roles, timeout or nickname, fetching a user nobody knows (Discord answers 404), and
reaction events. :class:`SimulatedDiscord` fills those
in on a bot's HTTP client (updating dpytest's guild state like Discord would) and records them;
:func:`react` delivers a reaction through discord.py's own gateway parser. dpytest also sends a
message of any size, where Discord refuses one over its limits: :func:`enforce_limits` makes
the bot's sends fail as Discord's do. ``example_bot.py --offline`` and the cog tests use them.
Only Discord is simulated: botdata runs for real.

A module of the repository beside ``example_bot.py``, not of the wheel (dpytest is a demo and
test dependency, not one of the extension).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import discord
import discord.ext.test as dpytest
from discord.ext import commands
from discord.ext.test import backend, factories

from botdata_cogs import limits


@dataclass
class SimulatedDiscord:
    """The Discord calls dpytest lacks, applied to ``guild`` and recorded.

    Set ``fail_unban`` to make unbans fail as a Discord outage would (HTTP 500).
    """

    guild: discord.Guild
    bans: set[int] = field(default_factory=set)
    unbans: list[int] = field(default_factory=list)
    edits: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    fail_unban: bool = False

    def install(self, bot: commands.Bot) -> None:
        """Route the bot's ban, unban, member edits and user fetches here."""
        _patch(
            bot.http,
            ban=self.ban,
            unban=self.unban,
            edit_member=self.edit_member,
            get_user=self.get_user,
        )

    async def get_user(self, user_id: int) -> dict[str, Any]:
        user = self.guild._state.get_user(int(user_id))
        if user is None:
            raise discord.NotFound(backend.FakeRequest(404, "Not Found"), "Unknown User")
        return factories.dict_from_user(user)

    async def ban(self, user_id: int, guild_id: int, *_: Any, **__: Any) -> None:
        self.bans.add(int(user_id))
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

    async def edit_member(
        self, guild_id: int, user_id: int, *, reason: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        member = self.guild.get_member(int(user_id))
        if member is None:
            raise discord.NotFound(backend.FakeRequest(404, "Not Found"), "Unknown Member")
        self.edits.append((member.id, fields))
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
