"""Run a slash command through the bot's command tree, as Discord would send it.

dpytest cannot dispatch interactions, so :func:`slash` builds a real :class:`discord.Interaction`
from a payload (author, channel, options, resolved users) and hands it to ``bot.tree``: the
hybrid command's app-command path runs for real (option transform, checks, the callback, error
replies). Only the interaction's response and followup are stand-ins recording what was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
import discord.ext.test as dpytest
from discord.ext import commands
from discord.ext.test import factories


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
    interaction: discord.Interaction = discord.Interaction(
        data=payload,  # type: ignore[arg-type]
        state=bot._connection,
    )
    sent: list[Sent] = []
    interaction._cs_response = _Response(sent)  # type: ignore[assignment]
    interaction._cs_followup = _Followup(sent)  # type: ignore[assignment]
    interaction._original_response = SimpleNamespace()  # type: ignore[assignment]
    await bot.tree._call(interaction)
    return sent
