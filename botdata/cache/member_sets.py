"""Per-guild sets of member ids kept in the hot cache (AFK members, XP-blacklisted members).

The per-message paths ask "is any of these members in the set?": with the set in the
in-process hot layer that is a dictionary lookup, with no database query and no Redis round
trip. Writers drop the set with ``cache.invalidate`` (every process), the next reader reloads it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from pydantic import BaseModel, ConfigDict

from botdata.cache.base import Cache


class MemberIds(BaseModel):
    """A cached set of member ids (stored as JSON, rebuilt as a frozenset)."""

    model_config = ConfigDict(frozen=True)

    ids: frozenset[int]


async def cached_member_ids(
    cache: Cache, key: str, ttl: float, load: Callable[[], Awaitable[Iterable[int]]]
) -> frozenset[int]:
    """The member ids cached at ``key`` (hot layer, then the shared cache), or ``await load()``
    cached for ``ttl`` seconds. Raises what ``load`` raises."""

    async def loader() -> MemberIds:
        return MemberIds(ids=frozenset(await load()))

    found: MemberIds = await cache.get_or_load(key, loader, ttl, hot=True, model=MemberIds)
    return found.ids
