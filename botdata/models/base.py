"""Building blocks shared by every model: mixins, snowflake ids and database-checked fields.

Constraints live in the database. Tortoise's schema generator writes no CHECK constraints, and
SQLite ignores ``VARCHAR(n)``, so the fields below append column-level ``CHECK`` clauses to their
SQL type. Column checks are valid inside ``CREATE TABLE`` on both PostgreSQL and SQLite, so the
schema Aerich generates from these models enforces the same rules on both backends.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeVar, overload

from tortoise import fields
from tortoise.exceptions import ValidationError
from tortoise.manager import Manager
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.validators import Validator

#: Smallest id Discord hands out (the first after the 2015 epoch); anything below is not an id.
MIN_SNOWFLAKE = 1 << 22
#: Snowflakes are unsigned 64-bit values that Discord keeps within the signed range.
MAX_SNOWFLAKE = (1 << 63) - 1


class SnowflakeValidator(Validator):
    """Rejects values that cannot be Discord snowflakes (runs before any SQL is sent)."""

    def __call__(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{value!r} is not a Discord snowflake (expected an int)")
        if not MIN_SNOWFLAKE <= value <= MAX_SNOWFLAKE:
            raise ValidationError(f"{value} is not a Discord snowflake")


_Str = TypeVar("_Str", str, str | None)


class _Checked(Protocol):
    """A field whose column carries a ``CHECK`` (the fields below)."""

    source_field: str | None
    model_field_name: str

    @property
    def check(self) -> str:
        """The check expression; ``{col}`` stands for the quoted column name."""

    @property
    def base_sql_type(self) -> str:
        """The plain Tortoise field's SQL type, before the check is appended."""


class _CheckedSQLType:
    """Dialect hook adding ``CHECK (<expr>)`` to the column's SQL type on every backend.

    Tortoise instantiates a field's ``_db_<dialect>`` class with the field and reads its
    ``SQL_TYPE`` property; each field below declares its dialect classes as subclasses of this.
    """

    def __init__(self, field: _Checked) -> None:
        self.field = field

    @property
    def SQL_TYPE(self) -> str:  # noqa: N802 (Tortoise's attribute name)
        field = self.field
        column = field.source_field or field.model_field_name
        check = field.check.format(col=f'"{column}"')
        return f"{field.base_sql_type} CHECK ({check})"


class CheckedIntField(fields.IntField[int]):
    """An ``IntField`` with a database-enforced ``check`` (``{col}`` is the column)."""

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        self.check = check
        super().__init__(**kwargs)

    @property
    def base_sql_type(self) -> str:
        """``INT``: the column's type without its check."""
        return super().SQL_TYPE

    class _db_postgres(_CheckedSQLType):  # noqa: N801 (Tortoise's dialect hook name)
        pass

    class _db_sqlite(_CheckedSQLType):  # noqa: N801
        pass


class CheckedBigIntField(fields.BigIntField):
    """A ``BigIntField`` with a database-enforced ``check`` (``{col}`` is the column)."""

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        self.check = check
        super().__init__(**kwargs)

    @property
    def base_sql_type(self) -> str:
        """``BIGINT``: the column's type without its check."""
        return super().SQL_TYPE

    class _db_postgres(_CheckedSQLType):  # noqa: N801 (Tortoise's dialect hook name)
        pass

    class _db_sqlite(_CheckedSQLType):  # noqa: N801
        pass


class TextField(fields.CharField[_Str]):
    """A bounded string: ``VARCHAR(n)`` plus ``CHECK (length(col) <= n)`` so SQLite enforces it too.

    ``min_length`` adds a lower bound (e.g. names that may not be empty); ``also`` is one more
    check expression (``{col}`` is the column).
    """

    @overload
    def __init__(
        self: TextField[str],
        max_length: int,
        *,
        min_length: int = 0,
        also: str | None = None,
        null: Literal[False] = False,
        **kwargs: Any,
    ) -> None: ...

    @overload
    def __init__(
        self: TextField[str | None],
        max_length: int,
        *,
        min_length: int = 0,
        also: str | None = None,
        null: Literal[True],
        **kwargs: Any,
    ) -> None: ...

    def __init__(
        self: TextField[Any],
        max_length: int,
        *,
        min_length: int = 0,
        also: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.min_length = min_length
        self.also = also
        super().__init__(max_length, **kwargs)

    @property
    def base_sql_type(self) -> str:
        """``VARCHAR(max_length)``: the column's type without its check."""
        return super().SQL_TYPE

    @property
    def check(self) -> str:
        """The length bounds and ``also``, as one check expression (``{col}`` is the column)."""
        if self.min_length:
            check = f"length({{col}}) BETWEEN {self.min_length} AND {self.max_length}"
        else:
            check = f"length({{col}}) <= {self.max_length}"
        return f"{check} AND {self.also}" if self.also else check

    class _db_postgres(_CheckedSQLType):  # noqa: N801 (Tortoise's dialect hook name)
        pass

    class _db_sqlite(_CheckedSQLType):  # noqa: N801
        pass


@overload
def SnowflakeField(*, null: Literal[False] = False, **kwargs: Any) -> fields.IntField[int]: ...


@overload
def SnowflakeField(*, null: Literal[True], **kwargs: Any) -> fields.IntField[int | None]: ...


def SnowflakeField(**kwargs: Any) -> fields.IntField[Any]:  # noqa: N802
    """A Discord id column: ``BIGINT`` validated as a snowflake before it is written.

    Returns a ``BigIntField`` (typed as the ``IntField`` it is, so that rows read as ``int``, or
    ``int | None`` with ``null=True``).
    """
    return fields.BigIntField(validators=[SnowflakeValidator()], **kwargs)


def SnowflakePKField(**kwargs: Any) -> fields.IntField[int]:  # noqa: N802
    """A primary key that *is* a Discord id (not generated by the database)."""
    return fields.BigIntField(
        primary_key=True, generated=False, validators=[SnowflakeValidator()], **kwargs
    )


class TimestampMixin:
    """``created_at`` set on insert, ``updated_at`` on every save (timezone-aware UTC).

    Managers that change rows with ``QuerySet.update()`` pass ``updated_at`` themselves, since
    Tortoise applies ``auto_now`` only in ``Model.save()``.
    """

    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)


class AuditMixin:
    """Who created and who last changed the row (Discord user ids)."""

    created_by = SnowflakeField(null=True)
    updated_by = SnowflakeField(null=True)


class SoftDeleteManager(Manager):
    """Default manager of soft-deletable models: leaves deleted rows out."""

    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().filter(is_deleted=False)


class SoftDeleteModel(Model):
    """Rows are marked deleted instead of removed.

    A subclass sets ``manager = SoftDeleteManager()`` in its ``Meta`` (Tortoise does not inherit
    ``Meta``); then ``Model.filter()``/``all()``/``get()`` see only live rows and
    ``Model.all_objects`` sees every row, deleted ones included.
    """

    is_deleted = fields.BooleanField(default=False, db_default=False)
    deleted_at = fields.DatetimeField(null=True)
    deleted_by = SnowflakeField(null=True)

    all_objects = Manager()

    class Meta:
        abstract = True
