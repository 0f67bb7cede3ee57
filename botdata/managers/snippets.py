"""Snippets: named texts members call up, with aliases, use counts and locks: ``db.snippets``.

Names and aliases are :class:`~botdata.models.SnippetName` rows. They are 1-100 characters of
ASCII letters, digits, ``_`` and ``-``, so ``str.lower()`` and SQL ``lower()`` agree, and the
database keeps ``lower(name)`` unique per guild: a name or alias that is taken, ignoring case, is
refused by the unique constraint itself (no check-then-insert race).

A snippet has at most :data:`MAX_ALIASES` aliases, so that everything listing its names fits a
Discord message. :meth:`SnippetManager.add_alias` counts them after its guarded ``UPDATE`` of the
snippet, in the same transaction: that statement holds the snippet's row (PostgreSQL) or the
database write lock (SQLite) until the commit, so concurrent calls count one after the other
and the cap holds. Snippets that had more aliases before the cap keep them.

Permissions are decided by the caller's facts: every changing method is told the actor's id and
whether the actor is a moderator (botdata cannot see Discord). The author or a moderator may
change a snippet; a locked snippet only a moderator. Each change is one guarded ``UPDATE``
(``... WHERE <actor may change it> RETURNING id``), so a concurrent lock or claim is never
overtaken; when it matches nothing, the snippet is read to raise the right error.
"""

from __future__ import annotations

import re
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from botdata.errors import (
    InvalidSnippetContentError,
    InvalidSnippetNameError,
    NotAnAliasError,
    SnippetAliasLimitError,
    SnippetAuthorPresentError,
    SnippetLockedError,
    SnippetNameTakenError,
    SnippetNotFoundError,
    SnippetPermissionError,
)
from botdata.managers import checks
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, checked
from botdata.managers.sql import ensure_guild, fetch
from botdata.models import Snippet, SnippetName
from botdata.schemas import SnippetSchema

#: Longest snippet content.
MAX_CONTENT = 4000
#: Most aliases a snippet may have (besides its name).
MAX_ALIASES = 10
_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
_QUERY = re.compile(r"[A-Za-z0-9_-]{0,100}")

# One statement changes a snippet found by name, only if the actor may change it ($4 is the
# actor, also recorded as updated_by). {values} and {guard} are fixed SQL fragments.
_GUARDED_UPDATE = (
    "UPDATE snippets SET {values}, updated_at = $3, updated_by = $4 "
    "WHERE id = (SELECT snippet_id FROM snippet_names WHERE guild_id = $1 AND key = $2)"
    "{guard} RETURNING id"
)
# Guards: nobody but moderators may change a locked snippet, nobody but its author.
_UNLOCKED_GUARD = " AND NOT locked"
_AUTHOR_GUARD = " AND author_id = $4 AND NOT locked"


def _guard(is_moderator: bool) -> str:
    """The guard of a change by a moderator (none) or by anybody else (author, unlocked)."""
    return "" if is_moderator else _AUTHOR_GUARD


def _check_name(name: object, what: str = "name") -> str:
    checks.text(name, f"snippet {what}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidSnippetNameError(
            f"snippet {what} {checks.excerpt(name)} must be 1-100 characters of ASCII letters, "
            "digits, _ and -"
        )
    return name


def _check_content(content: object) -> str:
    checks.text(content, "snippet content")
    if not isinstance(content, str) or not content.strip() or len(content) > MAX_CONTENT:
        raise InvalidSnippetContentError(
            f"snippet content must be 1-{MAX_CONTENT} characters with some non-blank text"
        )
    return content


def _name_taken(exc: IntegrityError, name: str) -> SnippetNameTakenError:
    """The typed error of a name insert refused by the unique key; other failures re-raise."""
    if "unique" not in str(exc).lower():
        raise exc
    return SnippetNameTakenError(f"the name {name!r} is taken in this guild (ignoring case)")


def _schema(snippet: Snippet, names: list[SnippetName], uses: int | None = None) -> SnippetSchema:
    """Build the schema of ``snippet`` from all its name rows."""
    return SnippetSchema(
        id=snippet.id,
        guild_id=snippet.guild_id,
        name=next(row.name for row in names if not row.is_alias),
        content=snippet.content,
        author_id=snippet.author_id,
        uses=snippet.uses if uses is None else uses,
        locked=snippet.locked,
        aliases=sorted((row.name for row in names if row.is_alias), key=str.lower),
        created_at=snippet.created_at,
    )


class SnippetManager(Manager):
    """Snippets of each guild. Reached as ``db.snippets``."""

    # Reading ----------------------------------------------------------------------------------

    @checked
    async def get(self, guild_id: Snowflake, name: str) -> SnippetSchema:
        """The snippet called ``name`` (its name or an alias, ignoring case).

        The schema carries what an info command shows: author, uses, creation time, aliases.
        Raises :class:`~botdata.errors.SnippetNotFoundError` when there is none,
        :class:`~botdata.errors.InvalidSnippetNameError` for a malformed name
        (:class:`~botdata.errors.UnstorableTextError` for a NUL or a surrogate in it),
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id.
        """
        _check_name(name)
        return await self._load(self._snippet_of(guild_id, name), name)

    @checked
    async def list(
        self, guild_id: Snowflake, *, query: str | None = None, limit: int = 20, offset: int = 0
    ) -> list[SnippetSchema]:
        """A page of the guild's snippets, most used first, then by name.

        ``query`` keeps the snippets whose name or one of whose aliases contains it, ignoring
        case (it is part of a name: 0-100 characters of ASCII letters, digits, ``_``, ``-``).
        Returns up to ``limit`` snippets after skipping ``offset`` (none past the end). Raises
        :class:`~botdata.errors.InvalidSnippetNameError` for a malformed query,
        :class:`~botdata.errors.UnstorableTextError` for one with a NUL or a surrogate,
        :class:`~botdata.errors.InvalidPageError` for a ``limit`` outside 1-100,
        :class:`~botdata.errors.InvalidOffsetError` for a negative ``offset``,
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id.
        """
        checks.page(limit, None)
        skipped = checks.offset(offset)
        checks.text(query, "snippet search query")
        if query is not None and not (isinstance(query, str) and _QUERY.fullmatch(query)):
            raise InvalidSnippetNameError(
                f"search {checks.excerpt(query)} must be up to 100 characters of ASCII letters, "
                "digits, _ and -"
            )
        if skipped is None:
            return []
        primaries = SnippetName.filter(guild_id=guild_id, is_alias=False)
        if query:
            matching = SnippetName.filter(guild_id=guild_id, key__contains=query.lower())
            primaries = primaries.filter(snippet_id__in=Subquery(matching.values("snippet_id")))
        page = (
            await primaries.order_by("-snippet__uses", "key")
            .offset(skipped)
            .limit(limit)
            .select_related("snippet")
        )
        aliases: dict[int, list[SnippetName]] = {row.snippet_id: [] for row in page}
        for alias in await SnippetName.filter(snippet_id__in=list(aliases), is_alias=True):
            aliases[alias.snippet_id].append(alias)
        return [_schema(row.snippet, [row, *aliases[row.snippet_id]]) for row in page]

    # Creating and using -----------------------------------------------------------------------

    @checked
    async def create(
        self, guild_id: Snowflake, name: str, content: str, *, author_id: Snowflake
    ) -> SnippetSchema:
        """Create a snippet called ``name`` (the guild's row is created if missing).

        The snippet and its name are inserted in one transaction: a taken name leaves nothing.
        Returns the new snippet. Raises :class:`~botdata.errors.SnippetNameTakenError` when the
        guild has that name or alias already (ignoring case),
        :class:`~botdata.errors.InvalidSnippetNameError` /
        :class:`~botdata.errors.UnstorableTextError` /
        :class:`~botdata.errors.InvalidSnippetContentError` for bad input,
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id.
        """
        _check_name(name)
        _check_content(content)
        try:
            async with in_transaction() as conn:
                await ensure_guild(conn, self.db.dialect, guild_id, self.db.clock.now())
                snippet = await Snippet.create(
                    guild_id=guild_id,
                    content=content,
                    author_id=author_id,
                    created_by=author_id,
                    updated_by=author_id,
                    using_db=conn,
                )
                row = await SnippetName.create(
                    guild_id=guild_id,
                    snippet=snippet,
                    name=name,
                    key=name.lower(),
                    is_alias=False,
                    using_db=conn,
                )
        except IntegrityError as exc:
            raise _name_taken(exc, name) from None
        return _schema(snippet, [row])

    @checked
    async def use(self, guild_id: Snowflake, name: str) -> SnippetSchema:
        """Count one use of the snippet called ``name`` (name or alias, ignoring case).

        The count is bumped by one ``UPDATE ... SET uses = uses + 1`` that finds the snippet
        through its names, so concurrent uses are never lost; ``updated_at`` is left alone (a
        use is not an edit). Returns the snippet with the count this use made.
        Raises :class:`~botdata.errors.SnippetNotFoundError` when there is none,
        :class:`~botdata.errors.InvalidSnippetNameError` for a malformed name
        (:class:`~botdata.errors.UnstorableTextError` for a NUL or a surrogate in it),
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad guild id.
        """
        _check_name(name)
        rows = await fetch(
            Tortoise.get_connection("default"),
            self.db.dialect,
            "UPDATE snippets SET uses = uses + 1 "
            "WHERE id = (SELECT snippet_id FROM snippet_names WHERE guild_id = $1 AND key = $2) "
            "RETURNING id, uses",
            [guild_id, name.lower()],
        )
        if not rows:
            raise SnippetNotFoundError(f"no snippet called {name!r}")
        return await self._load(self._snippet_by_id(rows[0]["id"]), name, rows[0]["uses"])

    # Changing ---------------------------------------------------------------------------------

    async def edit(
        self, guild_id: int, name: str, content: str, *, actor_id: int, is_moderator: bool
    ) -> SnippetSchema:
        """Replace the content of the snippet called ``name`` (name or alias).

        Allowed to its author (while unlocked) and to moderators. Returns the changed snippet.
        Raises :class:`~botdata.errors.SnippetNotFoundError`,
        :class:`~botdata.errors.SnippetLockedError` (locked, actor not a moderator),
        :class:`~botdata.errors.SnippetPermissionError` (neither author nor moderator),
        :class:`~botdata.errors.InvalidSnippetNameError` /
        :class:`~botdata.errors.UnstorableTextError` /
        :class:`~botdata.errors.InvalidSnippetContentError` /
        :class:`~botdata.errors.InvalidSnowflakeError` for bad input.
        """
        self._check_actor(guild_id, name, actor_id)
        _check_content(content)
        snippet_id = await self._guarded_update(
            Tortoise.get_connection("default"),
            guild_id,
            name,
            actor_id,
            _guard(is_moderator),
            "content = $5",
            content,
        )
        return await self._load(self._snippet_by_id(snippet_id), name)

    async def delete(
        self, guild_id: int, name: str, *, actor_id: int, is_moderator: bool
    ) -> SnippetSchema:
        """Delete the snippet called ``name`` (name or alias) and, by cascade, all its names.

        Allowed to its author (while unlocked) and to moderators. Returns the snippet as it was.
        Raises :class:`~botdata.errors.SnippetNotFoundError`,
        :class:`~botdata.errors.SnippetLockedError`,
        :class:`~botdata.errors.SnippetPermissionError`,
        :class:`~botdata.errors.InvalidSnippetNameError` /
        :class:`~botdata.errors.UnstorableTextError` /
        :class:`~botdata.errors.InvalidSnowflakeError` for bad input.
        """
        self._check_actor(guild_id, name, actor_id)
        async with in_transaction() as conn:
            # The guarded touch checks the actor and holds the row until the delete commits.
            snippet_id = await self._guarded_update(
                conn, guild_id, name, actor_id, _guard(is_moderator), "locked = locked"
            )
            deleted = await self._load(self._snippet_by_id(snippet_id).using_db(conn), name)
            await Snippet.filter(id=snippet_id).using_db(conn).delete()
        return deleted

    async def add_alias(
        self, guild_id: int, name: str, alias: str, *, actor_id: int, is_moderator: bool
    ) -> SnippetSchema:
        """Give the snippet called ``name`` (name or alias) one more name, ``alias``.

        Allowed to its author (while unlocked) and to moderators; a snippet has at most
        :data:`MAX_ALIASES` aliases. Returns the changed snippet.
        Raises :class:`~botdata.errors.SnippetNameTakenError` when ``alias`` is a name or alias
        in the guild already (ignoring case),
        :class:`~botdata.errors.SnippetAliasLimitError` when the snippet has
        :data:`MAX_ALIASES` aliases already, :class:`~botdata.errors.SnippetNotFoundError`,
        :class:`~botdata.errors.SnippetLockedError`,
        :class:`~botdata.errors.SnippetPermissionError`,
        :class:`~botdata.errors.InvalidSnippetNameError` /
        :class:`~botdata.errors.UnstorableTextError` /
        :class:`~botdata.errors.InvalidSnowflakeError` for bad input.
        """
        self._check_actor(guild_id, name, actor_id)
        _check_name(alias, "alias")
        try:
            async with in_transaction() as conn:
                # Holds the snippet until the commit: concurrent calls count one at a time.
                snippet_id = await self._guarded_update(
                    conn, guild_id, name, actor_id, _guard(is_moderator), "locked = locked"
                )
                aliases = SnippetName.filter(snippet_id=snippet_id, is_alias=True)
                if await aliases.using_db(conn).count() >= MAX_ALIASES:
                    raise SnippetAliasLimitError(
                        f"a snippet has at most {MAX_ALIASES} aliases; remove one first"
                    )
                await SnippetName.create(
                    guild_id=guild_id,
                    snippet_id=snippet_id,
                    name=alias,
                    key=alias.lower(),
                    is_alias=True,
                    using_db=conn,
                )
        except IntegrityError as exc:
            raise _name_taken(exc, alias) from None
        return await self._load(self._snippet_by_id(snippet_id), name)

    async def remove_alias(
        self, guild_id: int, alias: str, *, actor_id: int, is_moderator: bool
    ) -> SnippetSchema:
        """Remove the alias ``alias`` (ignoring case) from its snippet.

        Allowed to the snippet's author (while unlocked) and to moderators. Returns the changed
        snippet. Raises :class:`~botdata.errors.NotAnAliasError` when ``alias`` is a snippet's
        own name, :class:`~botdata.errors.SnippetNotFoundError` when nothing is called so,
        :class:`~botdata.errors.SnippetLockedError`,
        :class:`~botdata.errors.SnippetPermissionError`,
        :class:`~botdata.errors.InvalidSnippetNameError` /
        :class:`~botdata.errors.UnstorableTextError` /
        :class:`~botdata.errors.InvalidSnowflakeError` for bad input.
        """
        self._check_actor(guild_id, alias, actor_id, "alias")
        async with in_transaction() as conn:
            snippet_id = await self._guarded_update(
                conn, guild_id, alias, actor_id, _guard(is_moderator), "locked = locked"
            )
            removed = (
                await SnippetName.filter(guild_id=guild_id, key=alias.lower(), is_alias=True)
                .using_db(conn)
                .delete()
            )
            if not removed:
                raise NotAnAliasError(f"{alias!r} is the snippet's name, not an alias")
        return await self._load(self._snippet_by_id(snippet_id), alias)

    async def set_locked(
        self, guild_id: int, name: str, locked: bool, *, actor_id: int, is_moderator: bool
    ) -> SnippetSchema:
        """Lock (``locked=True``) or unlock the snippet called ``name`` (name or alias).

        Only moderators may; a locked snippet is changed only by moderators. Returns the snippet.
        Raises :class:`~botdata.errors.SnippetPermissionError` when the actor is not a
        moderator, :class:`~botdata.errors.SnippetNotFoundError`,
        :class:`~botdata.errors.InvalidSnippetNameError` /
        :class:`~botdata.errors.UnstorableTextError` /
        :class:`~botdata.errors.InvalidSnowflakeError` for bad input.
        """
        self._check_actor(guild_id, name, actor_id)
        if not is_moderator:
            raise SnippetPermissionError("only moderators may lock or unlock snippets")
        snippet_id = await self._guarded_update(
            Tortoise.get_connection("default"),
            guild_id,
            name,
            actor_id,
            "",
            "locked = $5",
            bool(locked),
        )
        return await self._load(self._snippet_by_id(snippet_id), name)

    async def claim(
        self, guild_id: int, name: str, *, new_author_id: int, author_present: bool
    ) -> SnippetSchema:
        """Make ``new_author_id`` the author of the snippet called ``name`` (name or alias).

        Only when its author has left the guild: the caller tells (``author_present``), since
        botdata cannot see members. Locked snippets cannot be claimed. Returns the snippet.
        Raises :class:`~botdata.errors.SnippetAuthorPresentError` when the author is present,
        :class:`~botdata.errors.SnippetLockedError` when the snippet is locked,
        :class:`~botdata.errors.SnippetNotFoundError`,
        :class:`~botdata.errors.InvalidSnippetNameError` /
        :class:`~botdata.errors.UnstorableTextError` /
        :class:`~botdata.errors.InvalidSnowflakeError` for bad input.
        """
        self._check_actor(guild_id, name, new_author_id)
        if author_present:
            raise SnippetAuthorPresentError("the author is still in the guild")
        snippet_id = await self._guarded_update(
            Tortoise.get_connection("default"),
            guild_id,
            name,
            new_author_id,
            _UNLOCKED_GUARD,
            "author_id = $4",
        )
        return await self._load(self._snippet_by_id(snippet_id), name)

    # Internals ----------------------------------------------------------------------------------

    @staticmethod
    def _check_actor(guild_id: int, name: str, actor_id: int, what: str = "name") -> None:
        checks.snowflake(guild_id, "guild_id")
        checks.snowflake(actor_id, "actor_id")
        _check_name(name, what)

    @staticmethod
    def _snippet_of(guild_id: int, name: str) -> QuerySet[SnippetName]:
        """Every name row of the snippet called ``name`` in the guild."""
        found = SnippetName.filter(guild_id=guild_id, key=name.lower()).values("snippet_id")
        return SnippetName.filter(snippet_id__in=Subquery(found))

    @staticmethod
    def _snippet_by_id(snippet_id: int) -> QuerySet[SnippetName]:
        return SnippetName.filter(snippet_id=snippet_id)

    @staticmethod
    async def _load(
        names: QuerySet[SnippetName], name: str, uses: int | None = None
    ) -> SnippetSchema:
        rows = await names.select_related("snippet")
        if not rows:
            raise SnippetNotFoundError(f"no snippet called {name!r}")
        return _schema(rows[0].snippet, rows, uses)

    async def _guarded_update(
        self,
        conn: BaseDBAsyncClient,
        guild_id: int,
        name: str,
        actor_id: int,
        guard: str,
        values: str,
        *extra: Any,
    ) -> int:
        """Apply ``values`` (SQL, extra arguments from ``$5``) to the snippet called ``name``
        where ``guard`` holds.

        Returns the snippet's id. Raises the typed error when there is no such snippet or the
        guard refuses the actor.
        """
        query = _GUARDED_UPDATE.format(values=values, guard=guard)
        arguments = [guild_id, name.lower(), self.db.clock.now(), actor_id, *extra]
        while True:
            rows = await fetch(conn, self.db.dialect, query, arguments)
            if rows:
                return int(rows[0]["id"])
            snippet = await self._load(self._snippet_of(guild_id, name).using_db(conn), name)
            if guard and snippet.locked:
                raise SnippetLockedError(f"snippet {snippet.name!r} is locked")
            if guard == _AUTHOR_GUARD and snippet.author_id != actor_id:
                raise SnippetPermissionError(f"only the author or a moderator may change {name!r}")
            # Unlocked and the actor's after all: it changed meanwhile; try again.
