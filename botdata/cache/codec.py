"""How values are stored: JSON bytes, with pydantic models rebuilt on the way out.

A key being filled by :meth:`Cache.get_or_load <botdata.cache.base.Cache.get_or_load>` holds a
lease instead: :data:`LEASE` followed by a token. No JSON starts with a NUL byte, so a lease is
never taken for a value.
"""

from __future__ import annotations

from typing import Any, Final

import pydantic_core
from pydantic import BaseModel

#: First byte of a lease.
LEASE: Final = b"\0"


def is_lease(raw: bytes) -> bool:
    """Whether ``raw`` (read from the cache) is a lease rather than a value."""
    return raw[:1] == LEASE


def dump(value: Any) -> bytes:
    """``value`` as JSON: plain JSON types, pydantic models (or lists of them), datetimes.

    Raises :class:`pydantic_core.PydanticSerializationError` for anything else.
    """
    return pydantic_core.to_json(value)


def load(raw: bytes | str, model: type[BaseModel] | None = None) -> Any:
    """Decode JSON from :func:`dump`; with ``model``, objects become instances of it.

    A JSON list with ``model`` becomes a list of instances; null stays None.
    """
    data = pydantic_core.from_json(raw)
    if model is None or data is None:
        return data
    if isinstance(data, list):
        return [model.model_validate(item) for item in data]
    return model.model_validate(data)
