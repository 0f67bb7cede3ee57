"""Input checks shared by the managers; each raises its typed error.

Every argument a manager takes is checked before any SQL statement or cache command is sent, so
bad input is refused alike on both backends, with an error from :mod:`botdata.errors`, and
nothing is written. The rules shared by all managers live here:

Text
    PostgreSQL refuses text holding a NUL character (in text columns and in JSON) where SQLite
    stores it, and a surrogate code point (U+D800-U+DFFF: a Python ``str`` may hold one, alone
    or as half of a pair, but no UTF-8 encoder takes it) fails on its way to either database or
    Redis. The rule on both backends: such text is refused with
    :class:`~botdata.errors.UnstorableTextError` naming the argument. :func:`text` applies it;
    every manager calls it on every text argument before its own checks (length, format), and
    :func:`json_text` on every string inside a JSON value, keys included. Session tokens are
    looked up, never stored: a token that is not storable text is simply not a valid token.

Numbers
    Case and note numbers are 32-bit columns and row ids 64-bit ones: an int above
    :data:`MAX_NUMBER` (a number) or outside ``1..MAX_ID`` (an id) is one no row can have, so it
    is "not found" without asking the database (:func:`check_number`, :func:`row_id`); a keyset
    page ``before`` such a number is the first page (:func:`page`), and an offset above
    :data:`MAX_OFFSET` is past the end (:func:`offset`). Discord ids are checked by
    :func:`snowflake`.

JSON
    A JSON value (a dynamic setting's value, case metadata) nests at most
    :data:`MAX_JSON_DEPTH` lists and dicts and encodes to at most :data:`MAX_JSON_SIZE` bytes,
    counted as botdata stores it: compact JSON text, non-ASCII characters escaped (``\\uXXXX``).
    :func:`json_text` checks both with an iterative walk that stops as soon as a bound is passed,
    so neither a deep nor a huge value costs more than the bounds (no ``RecursionError``, no
    megabytes encoded to be refused).

Times
    A time is timezone-aware and handled in UTC (:func:`aware`); a time or duration whose UTC
    form, or the time derived from it (:func:`shifted`), lies outside ``datetime``'s range
    (years 1 to 9999) is refused with the method's own time error, never ``OverflowError``.

Declared checks
    A manager method states what its arguments are with the annotated types below
    (:data:`Snowflake`, :data:`OptionalSnowflake`) and carries :func:`checked`, which checks
    each such argument, by name, before the method runs: the same function and error as a call
    of :func:`snowflake` in the body, decided once when the method is defined.

Messages
    An error names the argument and quotes a value only through :func:`excerpt`: at most
    :data:`EXCERPT` characters, whatever the value (a megabyte of text, a 5,000-digit int).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import reprlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Final, ParamSpec, TypeVar

from botdata.errors import (
    BotdataError,
    InvalidExpiryError,
    InvalidNumberError,
    InvalidOffsetError,
    InvalidPageError,
    InvalidSnowflakeError,
    NotFoundError,
    UnstorableTextError,
)
from botdata.models.base import MAX_SNOWFLAKE, MIN_SNOWFLAKE

T = TypeVar("T")
P = ParamSpec("P")

#: Largest page a list method returns.
MAX_PAGE: Final = 100
#: Largest case or note number (their columns are 32-bit).
MAX_NUMBER: Final = 2**31 - 1
#: Largest row id (64-bit columns).
MAX_ID: Final = 2**63 - 1
#: Largest offset of a page; any larger one is past the end (no guild has that many snippets
#: or members, and Redis and both databases take it).
MAX_OFFSET: Final = 2**31 - 1
#: Deepest nesting of lists and dicts in a JSON value (a dict of scalars is 1).
MAX_JSON_DEPTH: Final = 32
#: Largest JSON value, in bytes of compact JSON text with non-ASCII escaped (64 KiB).
MAX_JSON_SIZE: Final = 65_536
#: Most characters of a value an error message quotes.
EXCERPT: Final = 80

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_JSON_SEPARATORS = (",", ":")


class _Excerpt(reprlib.Repr):
    """``reprlib`` with room for a readable value, and ints too large to print."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = self.maxlong = EXCERPT
        self.maxlevel = 3

    def repr_int(self, x: int, level: int) -> str:
        # repr() refuses ints of 4,300 digits or more; past about 96 digits (320 bits) an
        # excerpt would show little of them anyway.
        if x.bit_length() > 320:
            return f"<an int of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_EXCERPT = _Excerpt()


def excerpt(value: object) -> str:
    """``repr(value)`` cut to at most :data:`EXCERPT` characters (long strings keep their
    start and end), for error messages. Never raises."""
    shown = _EXCERPT.repr(value)  # a failing __repr__ gives "<... instance at ...>"
    return shown if len(shown) <= EXCERPT else shown[: EXCERPT - 3] + "..."


def unstorable(value: str) -> str | None:
    """What in ``value`` cannot be stored (its first NUL character or surrogate code point,
    described), or None when it is storable text."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "a NUL character"
    return f"a surrogate code point (U+{ord(char):04X}) that is not a character"


def text(value: T, field: str) -> T:
    """Return ``value`` when it is storable text, or not a str at all (the caller checks the
    type, length and format).

    Raises :class:`~botdata.errors.UnstorableTextError` naming ``field`` when it holds a NUL
    character or a surrogate code point (see the module docstring).
    """
    if isinstance(value, str):
        problem = unstorable(value)
        if problem is not None:
            raise UnstorableTextError(f"{field} holds {problem}, which cannot be stored")
    return value


def json_text(value: object, field: str, error: type[BotdataError]) -> str:
    """``value`` as the compact JSON text botdata stores.

    Raises ``error`` naming ``field`` when ``value`` is not JSON (only dicts, lists, tuples,
    str, int, finite float, bool and None), nests deeper than :data:`MAX_JSON_DEPTH` or encodes
    to more than :data:`MAX_JSON_SIZE` bytes, and :class:`~botdata.errors.UnstorableTextError`
    naming the place (``field['key'][0]``) of a string that is not storable text.
    """
    # The walk counts a lower bound of the encoded size (a str its length and quotes, an int
    # its digits, a container a byte per item for brackets and commas, anything else a byte)
    # and stops once it is passed: the work is bounded by the bounds, not by the value.
    budget = MAX_JSON_SIZE
    stack: list[tuple[object, int, tuple[Any, ...]]] = [(value, 0, ())]
    while stack and budget >= 0:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            budget -= len(item) + 2
            if budget >= 0 and unstorable(item):
                text(item, _place(field, path))
        elif isinstance(item, (dict, list, tuple)):
            if depth == MAX_JSON_DEPTH:
                raise error(f"{field} nests deeper than {MAX_JSON_DEPTH} levels")
            budget -= len(item) + 1
            if budget < 0:
                break
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str):
                        budget -= len(key) + 3
                        if unstorable(key):
                            text(key, f"a key in {_place(field, path)}")
                    stack.append((child, depth + 1, (path, key)))
            else:
                stack.extend((child, depth + 1, (path, i)) for i, child in enumerate(item))
        elif isinstance(item, int):
            budget -= max(1, (item.bit_length() - 1) * 3 // 10)
        else:
            budget -= 1
    if budget >= 0:
        try:
            encoded = json.dumps(value, separators=_JSON_SEPARATORS, allow_nan=False)
        except (TypeError, ValueError) as exc:  # ValueError: NaN/infinity, int of 4,300+ digits
            raise error(f"{field} is not JSON ({exc})") from None
        if len(encoded) <= MAX_JSON_SIZE:
            return encoded
    raise error(f"{field} is larger than {MAX_JSON_SIZE} bytes of JSON")


def _place(field: str, path: tuple[Any, ...]) -> str:
    """``field`` followed by the keys and indexes of ``path`` (nested ``(parent, key)``)."""
    keys = []
    while path:
        path, key = path
        keys.append(f"[{excerpt(key)}]")
    return field + "".join(reversed(keys))


def snowflake(value: object, name: str) -> int:
    """Return ``value`` when it is a Discord id (an int from 2**22 to 2**63 - 1); raise
    :class:`~botdata.errors.InvalidSnowflakeError` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSnowflakeError(f"{name} must be a Discord id (an int), not {excerpt(value)}")
    if not MIN_SNOWFLAKE <= value <= MAX_SNOWFLAKE:
        raise InvalidSnowflakeError(f"{name}: {excerpt(value)} is not a Discord id")
    return value


def check_number(number: object, what: str, missing: type[NotFoundError]) -> int:
    """Return ``number`` when it is a case or note number a row can have (1 to
    :data:`MAX_NUMBER`).

    Raises :class:`~botdata.errors.InvalidNumberError` when it is not a positive int, and
    ``missing`` (e.g. :class:`~botdata.errors.CaseNotFoundError`, naming ``what``) when it is
    larger than any number: no row has it.
    """
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidNumberError(f"a {what} number is a positive int, not {excerpt(number)}")
    if number > MAX_NUMBER:
        raise missing(f"there is no {what} {excerpt(number)} (numbers end at {MAX_NUMBER})")
    return number


def row_id(value: object) -> int | None:
    """``value`` when it can be a row's id (an int from 1 to :data:`MAX_ID`), else None: no
    row has it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        return None
    return value


def page(limit: object, before: object) -> int | None:
    """Check a keyset page: ``limit`` 1..:data:`MAX_PAGE`, ``before`` None or a positive int.

    Returns the bound to apply: ``before``, or None (no bound) when it is None or above every
    number (:data:`MAX_NUMBER`). Raises :class:`~botdata.errors.InvalidPageError`.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidPageError(f"limit must be an int from 1 to {MAX_PAGE}, not {excerpt(limit)}")
    if before is None:
        return None
    if isinstance(before, bool) or not isinstance(before, int) or before < 1:
        raise InvalidPageError(f"before must be None or a positive int, not {excerpt(before)}")
    return before if before <= MAX_NUMBER else None


def offset(value: object) -> int | None:
    """Return a page's ``offset`` (an int >= 0), or None when it is past the end of any list
    (above :data:`MAX_OFFSET`): the page is empty.

    Raises :class:`~botdata.errors.InvalidOffsetError` when it is not an int >= 0.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOffsetError(f"offset must be an int >= 0, not {excerpt(value)}")
    return value if value <= MAX_OFFSET else None


def aware(value: object, name: str, error: type[BotdataError] = InvalidExpiryError) -> datetime:
    """``value`` in UTC, when it is a timezone-aware datetime whose UTC form exists.

    Raises ``error`` naming ``name`` otherwise (naive, not a datetime, or beyond ``datetime``'s
    range once in UTC).
    """
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise error(f"{name} must be a timezone-aware datetime, not {excerpt(value)}")
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise error(f"{name} {excerpt(value)} is outside the years 1-9999 in UTC") from None


def shifted(
    when: datetime, delta: timedelta, name: str, error: type[BotdataError] = InvalidExpiryError
) -> datetime:
    """``when + delta``. Raises ``error`` naming ``name`` when that is outside ``datetime``'s
    range (years 1 to 9999)."""
    try:
        return when + delta
    except OverflowError:
        raise error(f"{name} takes the time beyond the years 1-9999") from None


@dataclass(frozen=True)
class Check:
    """What :func:`checked` does with an argument annotated ``Annotated[..., Check(...)]``:
    ``function(value, name)``, unless ``value`` is None and ``optional``."""

    function: Callable[[object, str], object]
    optional: bool = False


#: A Discord id argument, checked by :func:`snowflake` (under :func:`checked`).
Snowflake = Annotated[int, Check(snowflake)]
#: A Discord id or None, checked by :func:`snowflake` when it is not None.
OptionalSnowflake = Annotated[int | None, Check(snowflake, optional=True)]


def _declared(annotation: object, namespace: dict[str, Any]) -> Check | None:
    """The :class:`Check` of a parameter's annotation (a string under ``from __future__ import
    annotations``, read in the method's module), or None. A name only imported for type
    checking is no check (only the annotated types above are)."""
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, namespace)  # what typing.get_type_hints does
        except NameError:
            return None
    for extra in getattr(annotation, "__metadata__", ()):
        if isinstance(extra, Check):
            return extra
    return None


def checked(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """``method`` checking its arguments annotated with a :class:`Check` (:data:`Snowflake`...)
    before it runs, in the order of its parameters; it raises what the checks raise (e.g.
    :class:`~botdata.errors.InvalidSnowflakeError` naming the parameter).

    The plan (which positions and names to check, with what) is made here, once; a call costs
    a loop over the checked parameters and a second coroutine: about 0.3-0.9 us measured (2
    cores under load), nothing beside a database round trip, but a third of a call answered
    from memory. The per-message methods answered from memory (``guilds.prefix``,
    ``guilds.config``, ``permissions.is_allowed``, ``afk.get_many``, and
    ``levels.grant_message_xp`` for a member on cooldown) therefore check inline with
    :func:`snowflake`. An argument left to its default is not checked.
    """
    plan: list[tuple[int, str, Check]] = []
    for index, parameter in enumerate(inspect.signature(method).parameters.values()):
        check = _declared(parameter.annotation, method.__globals__)
        if check is not None:
            plan.append((index, parameter.name, check))
    if not plan:
        raise TypeError(f"{method.__qualname__} has no argument with a Check to apply")
    steps = tuple(plan)

    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        count = len(args)
        for index, name, check in steps:
            if index < count:
                value: object = args[index]
            elif name in kwargs:
                value = kwargs[name]
            else:
                continue
            if value is not None or not check.optional:
                check.function(value, name)
        return await method(*args, **kwargs)

    return run
