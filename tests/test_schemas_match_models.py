"""The hand-written schemas (botdata/schemas.py) stay in step with the models they are made from.

A schema named ``<Model>Schema`` is made from rows of ``<Model>``: each of its fields is a column of
the model with a matching Python type and nullability, and each column of the model is either in the
schema or listed in :data:`LEFT_OUT` with the reason. Adding a column therefore fails here until the
schema shows it or the column is deliberately left out; renaming one fails until both agree.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any

import pytest
from tortoise import fields
from tortoise.fields.relational import RelationalField

import botdata.models as models
from botdata import schemas
from botdata.schemas import Schema

#: Columns each schema leaves out on purpose.
_AUDIT = frozenset({"created_by", "updated_by"})
LEFT_OUT: dict[str, frozenset[str]] = {
    # Timestamps of rows whose callers need neither, and who wrote them (audit columns).
    "GuildSchema": frozenset({"created_at", "updated_at"}),
    "GuildConfigSchema": _AUDIT | {"created_at", "updated_at"},
    "CustomCaseTypeSchema": _AUDIT | {"created_at", "updated_at"},
    # Expiry bookkeeping of the case-expiry claim (botdata.managers.case_expiry).
    "CaseSchema": _AUDIT | {"expiry_claimed_until", "expiry_handled_at"},
    "CaseEditSchema": frozenset({"id"}),
    # Soft-deleted notes are never returned, so their deletion columns say nothing.
    "NoteSchema": _AUDIT | {"is_deleted", "deleted_at", "deleted_by"},
    "SnippetSchema": _AUDIT | {"updated_at"},
    # The dispatcher's claim of the reminder.
    "ReminderSchema": frozenset({"updated_at", "claimed_until"}),
    # The AFK expiry claim (botdata.managers.claims).
    "AFKSchema": frozenset({"id", "created_at", "updated_at", "claimed_until"}),
    "LevelsSchema": frozenset({"id", "created_at", "updated_at"}),
    "StarboardSchema": frozenset({"created_at", "updated_at"}),
    "StarboardMessageSchema": frozenset({"id", "created_at", "updated_at"}),
    "GuildPermissionSchema": _AUDIT | {"created_at", "updated_at"},
    "WebUserSchema": frozenset({"created_at", "updated_at"}),
    "WebGuildPermissionSchema": frozenset({"id", "created_at", "updated_at"}),
    "GuildSettingSchema": _AUDIT | {"id", "created_at", "updated_at"},
}
#: Fields a schema gets from elsewhere than its model's columns.
DERIVED: dict[str, frozenset[str]] = {
    # A snippet's name and aliases are rows of SnippetName.
    "SnippetSchema": frozenset({"name", "aliases"}),
}
#: Schemas that are not rows of a model (results of a manager's computation).
NOT_ROWS = frozenset({"StarDecision", "ErasureSummary", "XPGrantSchema", "LeaderboardEntrySchema"})


def _schema_classes() -> list[type[Schema]]:
    found = [
        value
        for value in vars(schemas).values()
        if isinstance(value, type) and issubclass(value, Schema) and value is not Schema
    ]
    return sorted(found, key=lambda cls: cls.__name__)


def _row_schemas() -> list[type[Schema]]:
    return [cls for cls in _schema_classes() if cls.__name__ not in NOT_ROWS]


def _model_of(schema: type[Schema]) -> type[Any]:
    model = getattr(models, schema.__name__.removesuffix("Schema"), None)
    assert model in models.__models__, f"{schema.__name__}: no model {schema.__name__[:-6]}"
    return typing.cast(type[Any], model)


def _columns(model: type[Any]) -> dict[str, fields.Field[Any]]:
    """The model's columns by field name (a foreign key by its ``<name>_id`` field)."""
    return {
        name: field
        for name, field in model._meta.fields_map.items()
        if not isinstance(field, RelationalField)
    }


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); ``X`` -> (X, False)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1 < len(typing.get_args(annotation)):
            return args[0], True
    return annotation, False


def _python_type(field: fields.Field[Any]) -> Any:
    enum_type = getattr(field, "enum_type", None)
    if enum_type is not None:
        return enum_type
    if isinstance(field, fields.JSONField):
        return "json"
    return field.field_type


def _accepts(annotation: Any, column_type: Any) -> bool:
    if column_type == "json":
        return annotation is Any or typing.get_origin(annotation) in (list, dict)
    if isinstance(column_type, type) and issubclass(column_type, Enum):
        return annotation is column_type
    return annotation is column_type and column_type in (int, str, bool, datetime)


def test_every_schema_is_a_row_of_a_model_or_listed_as_computed() -> None:
    for schema in _row_schemas():
        _model_of(schema)
    assert {cls.__name__ for cls in _schema_classes()} >= NOT_ROWS, "a listed schema is gone"


@pytest.mark.parametrize("schema", _row_schemas(), ids=lambda cls: cls.__name__)
def test_schema_fields_are_columns_of_the_model_with_its_types(
    schema: type[Schema], botdata_session_db: object
) -> None:
    columns = _columns(_model_of(schema))
    derived = DERIVED.get(schema.__name__, frozenset())
    for name, info in schema.model_fields.items():
        if name in derived:
            assert name not in columns, f"{schema.__name__}.{name} is a column now"
            continue
        assert name in columns, f"{schema.__name__}.{name} is not a column of the model"
        annotation, optional = _split_optional(info.annotation)
        column = columns[name]
        assert _accepts(annotation, _python_type(column)), (
            f"{schema.__name__}.{name}: {info.annotation} for a {type(column).__name__}"
        )
        assert optional == column.null, (
            f"{schema.__name__}.{name}: the schema says {'nullable' if optional else 'not null'}, "
            f"the column {'is' if column.null else 'is not'} nullable"
        )


@pytest.mark.parametrize("schema", _row_schemas(), ids=lambda cls: cls.__name__)
def test_every_column_is_in_the_schema_or_left_out_on_purpose(
    schema: type[Schema], botdata_session_db: object
) -> None:
    columns = set(_columns(_model_of(schema)))
    left_out = LEFT_OUT.get(schema.__name__, frozenset())
    shown = set(schema.model_fields)
    assert left_out <= columns, f"{schema.__name__}: LEFT_OUT names a column that is gone"
    assert not left_out & shown, f"{schema.__name__}: a LEFT_OUT column is in the schema"
    assert columns - shown - left_out == set(), (
        f"{schema.__name__}: new columns neither in the schema nor in LEFT_OUT"
    )
