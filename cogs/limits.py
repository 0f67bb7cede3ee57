"""Discord's message limits, and fitting text that members wrote into them.

Every message the cogs build from member text (reasons, snippets, reminders, AFK reasons,
names, arguments quoted in refusals) goes through these functions, so a long input can make a
reply shorter but never too long to send: Discord refuses a message over its limits, and the
member would get no answer at all.

Lengths are counted in UTF-16 code units, as Discord's clients do: a character outside the
Basic Multilingual Plane (most emoji) counts twice. Cuts never split such a character.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import discord

#: Characters of a message's content.
CONTENT: Final = 2000
#: Characters of an embed's parts, and of a whole embed.
EMBED_TITLE: Final = 256
EMBED_DESCRIPTION: Final = 4096
EMBED_FIELDS: Final = 25
FIELD_NAME: Final = 256
FIELD_VALUE: Final = 1024
FOOTER: Final = 2048
AUTHOR: Final = 256
EMBED_TOTAL: Final = 6000
#: Characters of member input quoted in a refusal.
EXCERPT: Final = 80
#: Characters of a whole refusal (a short reply to bad input; it quotes excerpts only).
REFUSAL: Final = 500
#: What ends a text that was cut.
ELLIPSIS: Final = "…"


def length(text: str) -> int:
    """``text``'s length as Discord counts it (UTF-16 code units)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def fit(text: str, limit: int) -> str:
    """``text`` when it fits in ``limit`` characters, else its start ending in an ellipsis."""
    if len(text) * 2 <= limit or length(text) <= limit:
        return text
    budget = limit - length(ELLIPSIS)
    kept: list[str] = []
    for char in text:
        budget -= 2 if ord(char) > 0xFFFF else 1
        if budget < 0:
            break
        kept.append(char)
    return "".join(kept) + ELLIPSIS


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """A short quote of member input for a reply: on one line, at most ``limit`` characters."""
    return fit(" ".join(text.split()), limit)


def fit_lines(lines: Sequence[str], limit: int) -> str:
    """``lines`` joined by newlines in at most ``limit`` characters: as many whole lines as fit,
    then ``… and N more`` for the lines left out (a first line too long is cut instead).
    """
    joined = "\n".join(lines)
    if length(joined) <= limit:
        return joined
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        left = len(lines) - index - 1
        reserve = length(f"\n{ELLIPSIS} and {left} more") if left else 0
        if not kept:
            line = fit(line, max(limit - reserve, 1))
        cost = length(line) + (1 if kept else 0)
        if kept and used + cost + reserve > limit:
            kept.append(f"{ELLIPSIS} and {left + 1} more")
            break
        kept.append(line)
        used += cost
    return fit("\n".join(kept), limit)  # a limit too small even for the note


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """Cut ``embed``'s parts to Discord's limits, then the whole to :data:`EMBED_TOTAL`.

    Changes ``embed`` in place and returns it. Fields beyond :data:`EMBED_FIELDS` are dropped;
    when the whole is too long the description is shortened first, then field values from the
    last one up, then fields are dropped from the end, then the footer and the title shortened.
    """
    if embed.title:
        embed.title = fit(embed.title, EMBED_TITLE)
    if embed.description:
        embed.description = fit(embed.description, EMBED_DESCRIPTION)
    if embed.footer.text:
        embed.set_footer(text=fit(embed.footer.text, FOOTER), icon_url=embed.footer.icon_url)
    author = embed.author
    if author.name:
        embed.set_author(name=fit(author.name, AUTHOR), url=author.url, icon_url=author.icon_url)
    while len(embed.fields) > EMBED_FIELDS:
        embed.remove_field(-1)
    for index, field in enumerate(embed.fields):
        embed.set_field_at(
            index,
            name=fit(field.name or ELLIPSIS, FIELD_NAME),
            value=fit(field.value or ELLIPSIS, FIELD_VALUE),
            inline=bool(field.inline),
        )
    _shorten_to_total(embed)
    return embed


def _shorten_to_total(embed: discord.Embed) -> None:
    """Shorten ``embed`` (parts already within their own limits) to :data:`EMBED_TOTAL`."""
    excess = embed_length(embed) - EMBED_TOTAL
    if excess > 0 and embed.description:
        embed.description = fit(embed.description, max(length(embed.description) - excess, 1))
        excess = embed_length(embed) - EMBED_TOTAL
    for index in reversed(range(len(embed.fields))):
        if excess <= 0:
            return
        field = embed.fields[index]
        value = field.value or ELLIPSIS
        shortened = fit(value, max(length(value) - excess, 1))
        embed.set_field_at(index, name=field.name, value=shortened, inline=bool(field.inline))
        excess = embed_length(embed) - EMBED_TOTAL
    while excess > 0 and embed.fields:
        embed.remove_field(-1)
        excess = embed_length(embed) - EMBED_TOTAL
    footer = embed.footer
    if excess > 0 and footer.text:
        embed.set_footer(
            text=fit(footer.text, max(length(footer.text) - excess, 1)), icon_url=footer.icon_url
        )
        excess = embed_length(embed) - EMBED_TOTAL
    if excess > 0 and embed.title:
        embed.title = fit(embed.title, max(length(embed.title) - excess, 1))


def embed_length(embed: discord.Embed) -> int:
    """``embed``'s length as Discord counts it against :data:`EMBED_TOTAL`: title,
    description, field names and values, footer text and author name."""
    parts = [embed.title, embed.description, embed.footer.text, embed.author.name]
    for field in embed.fields:
        parts += [field.name, field.value]
    return sum(length(part) for part in parts if part)
