"""Moderators' notes about members: ``db.notes``.

Notes are numbered per guild from 1 like cases (contiguous, never reused, safe with concurrent
writers in several processes: see :mod:`botdata.managers.numbering`). Deleting a note is soft:
the row stays (``Note.all_objects`` sees it) but the note is gone for every method here, and
its number is not given out again.
"""

from __future__ import annotations

from botdata.errors import InvalidNoteContentError, NoteNotFoundError
from botdata.managers.base import Manager
from botdata.managers.checks import Snowflake, check_number, checked, page, snowflake, text
from botdata.managers.numbering import insert_numbered
from botdata.models import Note
from botdata.schemas import NoteSchema

MAX_CONTENT = 2000


def check_content(content: object) -> str:
    """Return ``content`` when it is a str of 1-2000 characters of storable text, not all
    blank.

    Raises :class:`~botdata.errors.UnstorableTextError` (a NUL or a surrogate) and
    :class:`~botdata.errors.InvalidNoteContentError`.
    """
    text(content, "note content")
    if not isinstance(content, str) or not content.strip() or len(content) > MAX_CONTENT:
        raise InvalidNoteContentError(
            f"note content must be 1-{MAX_CONTENT} characters with some non-blank text"
        )
    return content


class NoteManager(Manager):
    """Notes of every guild. Reached as ``db.notes``."""

    @checked
    async def add(
        self, guild_id: Snowflake, user_id: Snowflake, moderator_id: Snowflake, content: str
    ) -> NoteSchema:
        """Write a note about the member with the guild's next note number (the guild's row is
        made if missing); number and note are written atomically (see
        :mod:`botdata.managers.numbering`), ``created_by`` is the moderator.

        Returns the note. Raises :class:`~botdata.errors.InvalidSnowflakeError`,
        :class:`~botdata.errors.InvalidNoteContentError` and
        :class:`~botdata.errors.UnstorableTextError` before writing anything.
        """
        check_content(content)
        values = {
            "user_id": user_id,
            "moderator_id": moderator_id,
            "content": content,
            "is_deleted": False,
            "created_by": moderator_id,
            "updated_by": moderator_id,
        }
        now = self.db.clock.now()
        return await insert_numbered(
            self.db.dialect, Note, "note_count", guild_id, values, now, NoteSchema
        )

    async def get(self, guild_id: int, number: int) -> NoteSchema:
        """The guild's note ``number``.

        Raises :class:`~botdata.errors.NoteNotFoundError` when there is none or it was deleted,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        return NoteSchema.model_validate(await self._row(guild_id, number))

    @checked
    async def for_user(
        self, guild_id: Snowflake, user_id: Snowflake, *, limit: int = 25, before: int | None = None
    ) -> list[NoteSchema]:
        """The member's notes in the guild, newest first, deleted ones left out.

        ``before``: only notes numbered below it (the last number of the previous page; one
        above every number means no bound). Returns at most ``limit`` notes. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidPageError`.
        """
        before = page(limit, before)
        query = Note.filter(guild_id=guild_id, user_id=user_id)
        if before is not None:
            query = query.filter(number__lt=before)
        rows = await query.order_by("-number").limit(limit)
        return [NoteSchema.model_validate(row) for row in rows]

    @checked
    async def edit(
        self, guild_id: Snowflake, number: int, *, content: str, editor_id: int
    ) -> NoteSchema:
        """Replace the note's content; ``updated_by`` becomes the editor.

        Returns the note. Raises :class:`~botdata.errors.NoteNotFoundError` (also for a deleted
        note), :class:`~botdata.errors.InvalidNoteContentError`,
        :class:`~botdata.errors.UnstorableTextError`,
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        check_number(number, "note", NoteNotFoundError)
        snowflake(editor_id, "editor_id")
        check_content(content)
        now = self.db.clock.now()
        updated = await Note.filter(guild_id=guild_id, number=number).update(
            content=content, updated_by=editor_id, updated_at=now
        )
        if not updated:
            raise NoteNotFoundError(f"guild {guild_id} has no note {number}")
        return await self.get(guild_id, number)

    @checked
    async def delete(self, guild_id: Snowflake, number: int, *, by: int) -> None:
        """Soft-delete the note: it is kept with who deleted it and when. Returns nothing.

        Raises :class:`~botdata.errors.NoteNotFoundError` (also when already deleted),
        :class:`~botdata.errors.InvalidSnowflakeError` and
        :class:`~botdata.errors.InvalidNumberError`.
        """
        check_number(number, "note", NoteNotFoundError)
        snowflake(by, "by")
        now = self.db.clock.now()
        deleted = await Note.filter(guild_id=guild_id, number=number).update(
            is_deleted=True, deleted_at=now, deleted_by=by, updated_at=now, updated_by=by
        )
        if not deleted:
            raise NoteNotFoundError(f"guild {guild_id} has no note {number}")

    @checked
    async def _row(self, guild_id: Snowflake, number: int) -> Note:
        """The live note row. Raises NoteNotFoundError."""
        check_number(number, "note", NoteNotFoundError)
        note = await Note.get_or_none(guild_id=guild_id, number=number)
        if note is None:
            raise NoteNotFoundError(f"guild {guild_id} has no note {number}")
        return note
