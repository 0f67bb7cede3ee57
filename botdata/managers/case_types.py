"""A guild's own case types: ``db.case_types``.

Names are per guild, folded to lower case and made of ``a-z``, ``0-9``, ``_`` and ``-`` (1-50
characters). The names of the built-in :class:`~botdata.models.CaseType` values (``ban``,
``tempban``, ...) are reserved, so a ``str`` given as a case type always means a custom type.
"""

from __future__ import annotations

import re

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from botdata.errors import (
    BuiltinCaseTypeNameError,
    CaseTypeExistsError,
    CaseTypeInUseError,
    CaseTypeNotFoundError,
    InvalidCaseTypeNameError,
    InvalidCaseTypeTextError,
    InvalidSeverityError,
)
from botdata.managers.base import Manager
from botdata.managers.checks import OptionalSnowflake, Snowflake, checked, excerpt, text
from botdata.managers.sql import ensure_guild
from botdata.models import CaseType, CustomCaseType
from botdata.schemas import CustomCaseTypeSchema

_NAME = re.compile(r"[a-z0-9_-]{1,50}")
_BUILTIN = frozenset(member.value.lower() for member in CaseType)


def normalise_name(name: object) -> str:
    """``name`` as stored: stripped and lower-cased.

    Raises :class:`~botdata.errors.UnstorableTextError` (a NUL or a surrogate),
    :class:`~botdata.errors.InvalidCaseTypeNameError` when it is not a valid name and
    :class:`~botdata.errors.BuiltinCaseTypeNameError` when it is a built-in type's name.
    """
    text(name, "case type name")
    if not isinstance(name, str) or not _NAME.fullmatch(name.strip().lower()):
        raise InvalidCaseTypeNameError(
            f"case type name {excerpt(name)} must be 1-50 characters of a-z, 0-9, _ and -"
        )
    key = name.strip().lower()
    if key in _BUILTIN:
        raise BuiltinCaseTypeNameError(
            f"{key!r} is a built-in case type: pass CaseType.{key.upper()} instead"
        )
    return key


class CaseTypeManager(Manager):
    """Custom case types of each guild. Reached as ``db.case_types``."""

    @checked
    async def create(
        self,
        guild_id: Snowflake,
        name: str,
        *,
        display_name: str,
        description: str | None = None,
        severity: int = 1,
        requires_duration: bool = False,
        created_by: OptionalSnowflake = None,
    ) -> CustomCaseTypeSchema:
        """Add a case type to the guild (creating the guild's row if it has none).

        ``name`` is normalised (see :func:`normalise_name`); ``requires_duration`` types need a
        duration on every case and are lifted by ``db.cases.claim_due`` like a tempban.
        Returns the new type. Raises :class:`~botdata.errors.InvalidSnowflakeError`,
        :class:`~botdata.errors.InvalidCaseTypeNameError`,
        :class:`~botdata.errors.BuiltinCaseTypeNameError`,
        :class:`~botdata.errors.InvalidCaseTypeTextError` (display name not 1-100 characters,
        description over 500), :class:`~botdata.errors.UnstorableTextError` (a NUL or a
        surrogate in a text), :class:`~botdata.errors.InvalidSeverityError` (not 1-10) before
        writing anything, and :class:`~botdata.errors.CaseTypeExistsError` when the guild has a
        type of that name already.
        """
        key = normalise_name(name)
        text(display_name, "display_name")
        text(description, "description")
        if not isinstance(display_name, str) or not 1 <= len(display_name.strip()) <= 100:
            raise InvalidCaseTypeTextError("display_name must be 1-100 characters")
        if description is not None and (not isinstance(description, str) or len(description) > 500):
            raise InvalidCaseTypeTextError("description must be at most 500 characters")
        if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 10:
            raise InvalidSeverityError(
                f"severity must be an int from 1 to 10, not {excerpt(severity)}"
            )
        try:
            async with in_transaction() as conn:
                await ensure_guild(conn, self.db.dialect, guild_id, self.db.clock.now())
                row = await CustomCaseType.create(
                    guild_id=guild_id,
                    name=key,
                    display_name=display_name.strip(),
                    description=description,
                    severity=severity,
                    requires_duration=bool(requires_duration),
                    created_by=created_by,
                    updated_by=created_by,
                    using_db=conn,
                )
        except IntegrityError:
            raise CaseTypeExistsError(f"guild {guild_id} already has case type {key!r}") from None
        return CustomCaseTypeSchema.model_validate(row)

    @checked
    async def get(self, guild_id: Snowflake, name: str) -> CustomCaseTypeSchema:
        """The guild's case type ``name`` (normalised first).

        Raises :class:`~botdata.errors.CaseTypeNotFoundError` when the guild has none of that
        name, and the name errors of :func:`normalise_name`.
        """
        key = normalise_name(name)
        row = await CustomCaseType.get_or_none(guild_id=guild_id, name=key)
        if row is None:
            raise CaseTypeNotFoundError(f"guild {guild_id} has no case type {key!r}")
        return CustomCaseTypeSchema.model_validate(row)

    @checked
    async def delete(self, guild_id: Snowflake, name: str) -> None:
        """Remove the guild's case type ``name``. Returns nothing.

        Raises :class:`~botdata.errors.CaseTypeNotFoundError` when there is no such type,
        :class:`~botdata.errors.CaseTypeInUseError` when cases (voided ones too) use it, and the
        name errors of :func:`normalise_name`.
        """
        key = normalise_name(name)
        try:
            removed = await CustomCaseType.filter(guild_id=guild_id, name=key).delete()
        except IntegrityError:
            raise CaseTypeInUseError(
                f"case type {key!r} of guild {guild_id} is used by cases"
            ) from None
        if not removed:
            raise CaseTypeNotFoundError(f"guild {guild_id} has no case type {key!r}")

    @checked
    async def list(self, guild_id: Snowflake) -> list[CustomCaseTypeSchema]:
        """Every case type of the guild, by name. Raises
        :class:`~botdata.errors.InvalidSnowflakeError` for a bad id."""
        rows = await CustomCaseType.filter(guild_id=guild_id).order_by("name")
        return [CustomCaseTypeSchema.model_validate(row) for row in rows]
