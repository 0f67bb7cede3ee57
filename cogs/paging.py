"""Paged lists: the page argument, fetching one page, the list embed and its one-line items.

``cases``, ``notes``, ``snippets`` and ``leaderboard`` show :data:`PAGE_SIZE` items a page in an
embed whose footer says the page and, when another follows, the command that shows it
(:func:`list_embed`). Keyset-paged lists (cases and notes, newest first by number) are read a
page at a time with :func:`page_of`; offset-paged ones (snippets, the leaderboard) ask their
manager for ``PAGE_SIZE + 1`` items at ``(page - 1) * PAGE_SIZE``, the extra one telling whether
a next page exists.

Not an extension: a helper module the cogs import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import discord
from discord.ext import commands

from . import limits

#: Items shown per page of a list.
PAGE_SIZE = 10
#: The highest page number a list command takes.
MAX_PAGE = 100
#: Characters of a reason, note or reminder shown on one line of a list.
SHOWN_TEXT = 80

#: Command argument: a page number of a list.
Page = commands.Range[int, 1, MAX_PAGE]


class Numbered(Protocol):
    """A case or note: listed newest (highest number) first."""

    number: int


N = TypeVar("N", bound=Numbered)


async def page_of(
    fetch: Callable[[int, int | None], Awaitable[list[N]]], page: int
) -> tuple[list[N], bool]:
    """Page ``page`` (from 1) of a keyset-paged list and whether another page follows.

    ``fetch(limit, before)`` returns items newest first, each with a ``number``; pages before
    the wanted one are walked through (a short walk: pages are capped at :data:`MAX_PAGE`).
    Raises what ``fetch`` raises.
    """
    before: int | None = None
    for _ in range(page - 1):
        skipped = await fetch(PAGE_SIZE, before)
        if len(skipped) < PAGE_SIZE:
            return [], False
        before = skipped[-1].number
    found = await fetch(PAGE_SIZE + 1, before)
    return found[:PAGE_SIZE], len(found) > PAGE_SIZE


def list_embed(
    title: str, lines: list[str], page: int, more: bool, next_command: str
) -> discord.Embed:
    """An embed of ``lines`` with the page number and, if ``more``, how to see the next page."""
    embed = discord.Embed(title=title, description="\n".join(lines))
    footer = f"Page {page}"
    if more:
        footer += f" · next: {next_command}"
    embed.set_footer(text=footer)
    return embed


def shorten(text: str) -> str:
    """``text`` on one line, cut to :data:`SHOWN_TEXT` characters, markdown escaped."""
    return discord.utils.escape_markdown(limits.excerpt(text, SHOWN_TEXT))
