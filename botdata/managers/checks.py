"""Input checks shared by the managers; each raises its typed error."""

from __future__ import annotations

from datetime import datetime

from tortoise.exceptions import ValidationError as TortoiseValidationError

from botdata.errors import (
    InvalidExpiryError,
    InvalidNumberError,
    InvalidPageError,
    InvalidSnowflakeError,
)
from botdata.models.base import SnowflakeValidator

#: Largest page a list method returns.
MAX_PAGE = 100

_SNOWFLAKE = SnowflakeValidator()


def snowflake(value: object, name: str) -> int:
    """Return ``value`` when it is a Discord id; raise :class:`InvalidSnowflakeError` naming
    ``name`` otherwise."""
    try:
        if value is None:
            raise TortoiseValidationError("None is not a Discord snowflake")
        _SNOWFLAKE(value)
    except TortoiseValidationError as exc:
        raise InvalidSnowflakeError(f"{name}: {exc}") from None
    return value  # type: ignore[return-value]


def check_number(number: object) -> int:
    """Return ``number`` when it is a positive int (a case or note number).

    Raises :class:`InvalidNumberError` otherwise.
    """
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidNumberError(f"a case or note number is a positive int, not {number!r}")
    return number


def page(limit: object, before: object) -> None:
    """Check a keyset page: ``limit`` 1..``MAX_PAGE``, ``before`` None or a positive int.

    Raises :class:`InvalidPageError`.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidPageError(f"limit must be an int from 1 to {MAX_PAGE}, not {limit!r}")
    if before is not None and (
        isinstance(before, bool) or not isinstance(before, int) or before < 1
    ):
        raise InvalidPageError(f"before must be None or a positive int, not {before!r}")


def aware(value: object, name: str) -> datetime:
    """Return ``value`` when it is a timezone-aware datetime; raise :class:`InvalidExpiryError`
    otherwise."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidExpiryError(f"{name} must be a timezone-aware datetime, not {value!r}")
    return value
