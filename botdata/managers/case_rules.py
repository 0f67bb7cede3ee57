"""What a case may hold: reasons, durations and metadata, checked before anything is written.

Durations
    TEMPBAN, TIMEOUT and custom types with ``requires_duration`` need one; JAIL takes one
    optionally (a timed jail); every other type refuses one. A duration is a positive
    ``timedelta`` (the case expires that long after it is made) or, instead, an explicit
    timezone-aware ``expires_at`` in the future. Expiring cases are handed out by
    ``db.cases.claim_due`` once their time has passed. The expiry must fall within
    ``datetime``'s range (a duration of ``timedelta.max`` is refused, not an ``OverflowError``).

Text and metadata
    Reasons are at most :data:`MAX_REASON` characters of storable text (no NUL, no surrogates:
    :func:`~botdata.managers.checks.text`). Metadata is a dict with str keys holding JSON,
    within the JSON bounds of :mod:`botdata.managers.checks` (32 levels, the metadata dict
    being the first, and 64 KiB). ``user_roles`` holds at most :data:`MAX_ROLES` role ids, as
    many as a guild can have.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from botdata.errors import (
    DurationNotAllowedError,
    DurationRequiredError,
    InvalidCaseMetadataError,
    InvalidExpiryError,
    InvalidSnowflakeError,
    ReasonTooLongError,
    TooManyRolesError,
)
from botdata.managers.checks import (
    aware,
    excerpt,
    json_text,
    shifted,
    snowflake,
    text,
)
from botdata.models import CaseType
from botdata.schemas import CustomCaseTypeSchema

MAX_REASON = 2000
#: Most role ids a case keeps: Discord gives a guild at most 250 roles.
MAX_ROLES = 250
#: Built-in types that always expire, and the one that may.
NEEDS_DURATION = frozenset({CaseType.TEMPBAN, CaseType.TIMEOUT})
MAY_HAVE_DURATION = frozenset({CaseType.JAIL})


def check_reason(reason: object, name: str = "reason") -> str:
    """Return ``reason`` when it is a str of at most 2000 characters of storable text.

    Raises :class:`~botdata.errors.UnstorableTextError` (a NUL or a surrogate, naming ``name``)
    and :class:`~botdata.errors.ReasonTooLongError`.
    """
    text(reason, name)
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ReasonTooLongError(f"{name} must be a str of at most {MAX_REASON} characters")
    return reason


def expiry(
    kind: CaseType | CustomCaseTypeSchema,
    duration: object,
    expires_at: object,
    now: datetime,
) -> datetime | None:
    """When a case of ``kind`` (built-in or custom), made at ``now``, expires (UTC), or None
    if it does not.

    Raises :class:`~botdata.errors.DurationRequiredError`,
    :class:`~botdata.errors.DurationNotAllowedError` or
    :class:`~botdata.errors.InvalidExpiryError` (see the module docstring).
    """
    if isinstance(kind, CaseType):
        name, required, optional = kind.value, kind in NEEDS_DURATION, kind in MAY_HAVE_DURATION
    else:  # a custom type has a duration exactly when it requires one
        name, required, optional = kind.name, kind.requires_duration, False
    if duration is None and expires_at is None:
        if required:
            raise DurationRequiredError(f"a {name} case needs a duration")
        return None
    if not required and not optional:
        raise DurationNotAllowedError(f"a {name} case cannot have a duration")
    if duration is not None and expires_at is not None:
        raise InvalidExpiryError("give a duration or expires_at, not both")
    if duration is not None:
        if not isinstance(duration, timedelta) or duration <= timedelta(0):
            raise InvalidExpiryError(
                f"duration must be a positive timedelta, not {excerpt(duration)}"
            )
        return shifted(now, duration, "duration")
    when = aware(expires_at, "expires_at")
    if when <= now:
        raise InvalidExpiryError(f"expires_at {when.isoformat()} is not in the future")
    return when


def check_roles(user_roles: Iterable[int]) -> list[int]:
    """``user_roles`` as a list of role ids. Raises
    :class:`~botdata.errors.InvalidSnowflakeError` for a value that is not one and
    :class:`~botdata.errors.TooManyRolesError` for more than :data:`MAX_ROLES` of them."""
    if isinstance(user_roles, (str, bytes)) or not isinstance(user_roles, Iterable):
        raise InvalidSnowflakeError(f"user_roles must be role ids, not {excerpt(user_roles)}")
    roles: list[int] = []
    for role in user_roles:
        if len(roles) == MAX_ROLES:
            raise TooManyRolesError(f"user_roles holds more than {MAX_ROLES} role ids")
        roles.append(snowflake(role, "user_roles"))
    return roles


def check_metadata(metadata: object) -> dict[str, Any] | None:
    """Return ``metadata`` when it is None or a dict with str keys holding JSON within the
    bounds (see the module docstring).

    Raises :class:`~botdata.errors.InvalidCaseMetadataError` otherwise, and
    :class:`~botdata.errors.UnstorableTextError` for a string in it that is not storable text.
    """
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidCaseMetadataError("metadata must be a dict with str keys")
    json_text(metadata, "metadata", InvalidCaseMetadataError)
    return metadata
